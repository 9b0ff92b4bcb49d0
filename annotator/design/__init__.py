"""The sampling design: strata, allocation of labels across them, rounds and top-ups, and the
report of what a design is expected to achieve."""
