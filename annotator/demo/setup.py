"""Set up the demo study end to end, so every feature can be tried before importing data.

The demo is the whole pipeline on realistic synthetic data: completions with true labels
kept aside (``demo_oracle``), the language-ID surrogate, the paper's stratified sample,
demo accounts, and part of the sample labeled by simulated annotators so the dashboard has
estimates to show while the rest waits for people.

The demo accounts share the known password ``demo`` (shorter than a real account may have), so
the demo is set up only on request: ``ifl demo`` or ``ifl app --demo``, never from a page.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Engine

__all__ = ["DEMO_ACCOUNTS", "DEMO_PASSWORD", "set_up_demo"]

DEMO_PASSWORD = "demo"
#: name -> (role, languages read). Between them they read all 14 study languages.
DEMO_ACCOUNTS: dict[str, tuple[str, list[str]]] = {
    "anna": ("annotator", ["de", "en", "fr", "es", "ro"]),
    "li": ("annotator", ["zh", "ja", "en"]),
    "priya": ("annotator", ["hi", "bn", "ur", "en"]),
    "noa": ("annotator", ["he", "ar", "en"]),
    "somchai": ("annotator", ["th", "ru", "en"]),
    "rosa": ("researcher", ["en", "de"]),
    "admin": ("admin", ["en"]),
}
SAMPLE_SIZE = {"small": 600, "paper": 1000}


def set_up_demo(engine: Engine, size: str = "small", seed: int = 0, labeled_share: float = 0.5) -> Iterator[str]:
    """Run every step of the demo, yielding a line of progress per step."""
    from annotator.access.accounts import add_annotator, list_annotators
    from annotator.demo.annotators import simulate_annotators
    from annotator.demo.loading import load_demo
    from annotator.design.draws import draw_sample
    from annotator.ingest.langid import run_language_id

    yield str(load_demo(engine, size=size, seed=seed))
    yield str(run_language_id(engine))
    sample = draw_sample(engine, n=SAMPLE_SIZE[size], seed=seed)
    yield str(sample)
    existing = set(list_annotators(engine)["name"])
    for name, (role, languages) in DEMO_ACCOUNTS.items():
        if name not in existing:
            add_annotator(
                engine, name, languages, role=role, password=DEMO_PASSWORD, min_password_length=len(DEMO_PASSWORD)
            )
    yield f"demo accounts: {', '.join(DEMO_ACCOUNTS)} (password {DEMO_PASSWORD!r})"
    to_label = round(SAMPLE_SIZE[size] * labeled_share)
    if to_label:
        labeled = simulate_annotators(engine, n=to_label, seed=seed)
        yield f"simulated annotators labeled {labeled} of {SAMPLE_SIZE[size]} sampled items"
