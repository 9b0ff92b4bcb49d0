"""The demo study: a generated population of completions with known truth, its phrase bank,
simulated annotators, and the set-up that builds it. Nothing outside this package and the CLI
(``ifl demo``) depends on it."""
