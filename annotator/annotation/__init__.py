"""Annotating the sample: which item an annotator gets next (routing and leases), storing labels
and their revisions, guidelines, and agreement and adjudication between annotators."""
