"""Getting completions in: validating and upserting uploaded files, the images they point to,
and the language-ID surrogate that predicts each answer's language class."""
