"""From labels to numbers: the analysis frame, the study's estimates, their export and the words
that describe them."""
