"""Simulated annotators for the demo: careful people who know the truth and sometimes slip.

They label through the real routing path (claims and submits, batched: :func:`claim_batch`
/ :func:`submit_batch`) as accounts of their own, so the demo exercises the same rules and
tables as real annotators: language
routing, queue order, leases, second labels for the doubly annotated items, the audit
trail. Their truth is the ``demo_oracle`` table, which only ``ifl demo`` fills; a real study
has none, and then this refuses to run. Simulated accounts have no password, so nobody can
log in as one.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sqlalchemy import Engine, func, select

from annotator.access.accounts import add_annotator
from annotator.annotation.answers import Label
from annotator.annotation.reads import current_sample_id
from annotator.annotation.routing import claim_batch, release, submit_batch
from annotator.storage import session_scope
from db.models import Annotation, Annotator, AnnotatorLanguage, DemoOracle, SampleItem
from db.vocabulary import ANSWER_CLASSES

__all__ = ["SimulationError", "simulate_annotators"]

# Median time a careful annotator spends on an item, and its spread (log scale).
_MEDIAN_SECONDS, _SIGMA = 25.0, 0.6
# Items one simulated account claims and submits per transaction: the per-item path is too slow
# for a demo of a thousand items, and batches keep the routing rules and tables.
_BATCH = 25


class SimulationError(RuntimeError):
    """The database cannot be labeled by simulated annotators (no sample, no oracle)."""


def _slip(value: bool | None, rng: np.random.Generator) -> bool | None:
    return bool(rng.integers(2)) if value is None else not value


def _label(truth: tuple[str, bool | None, bool | None], error_rate: float, rng: np.random.Generator):
    """The oracle's label, each question wrong with probability ``error_rate``."""
    answer, matches_gold, correct = truth
    if rng.random() < error_rate:
        answer = str(rng.choice([label for label in ANSWER_CLASSES if label != answer]))
    if rng.random() < error_rate:
        matches_gold = _slip(matches_gold, rng)
    if rng.random() < error_rate:
        correct = _slip(correct, rng)
    return answer, matches_gold, correct


def _accounts(engine: Engine, languages: list[str], names: list[str] | None) -> dict[str, list[int]]:
    """Language -> ids of the simulated accounts that read it, creating absent accounts.

    By default two per language (``sim-<lang>-1``, ``sim-<lang>-2``): a second label must come
    from a different person. Named accounts that do not exist read all the sample's languages.
    """
    wanted = (
        [(name, languages) for name in names]
        if names is not None
        else [(f"sim-{language}-{k}", [language]) for language in languages for k in (1, 2)]
    )
    with session_scope(engine) as session:
        existing = {name: annotator_id for name, annotator_id in session.execute(select(Annotator.name, Annotator.id))}
    ids = [existing.get(name) or add_annotator(engine, name, reads, password=None) for name, reads in wanted]
    with session_scope(engine) as session:
        rows = session.execute(
            select(AnnotatorLanguage.language, AnnotatorLanguage.annotator_id)
            .where(AnnotatorLanguage.annotator_id.in_(ids))
            .order_by(AnnotatorLanguage.annotator_id)
        ).all()
    readers: dict[str, list[int]] = defaultdict(list)
    for language, annotator_id in rows:
        readers[language].append(annotator_id)
    return readers


def simulate_annotators(
    engine: Engine,
    n: int | None = None,
    error_rate: float = 0.03,
    seed: int = 0,
    annotator_names: list[str] | None = None,
) -> int:
    """Label up to ``n`` new items of the active sample (all remaining if None), plus the second
    label of every doubly annotated item among them. Returns the number of items newly labeled
    (second labels, of these or of earlier items, come on top).

    The next language is always the one with the lowest labeled share, so a partial run
    labels the languages evenly; within a language, routing picks the item as for anyone.
    """
    if n is not None and n < 0:
        raise ValueError("n must be >= 0")
    if not 0 <= error_rate <= 1:
        raise ValueError("error_rate must be between 0 and 1")
    rng = np.random.default_rng(seed)
    with session_scope(engine) as session:
        sample_id = current_sample_id(session)
        if sample_id is None:
            raise SimulationError("no sample has been drawn yet; draw one before simulating annotators")
        if session.scalar(select(func.count()).select_from(DemoOracle)) == 0:
            raise SimulationError(
                "the demo_oracle table is empty: simulated annotators only label demo databases (`ifl demo`)"
            )
        items = session.execute(
            select(
                SampleItem.completion_id,
                SampleItem.query_language,
                DemoOracle.answer_language,
                DemoOracle.matches_gold,
                DemoOracle.correct,
            )
            .outerjoin(DemoOracle, DemoOracle.completion_id == SampleItem.completion_id)
            .where(SampleItem.sample_id == sample_id)
        ).all()
        in_sample = select(SampleItem.completion_id).where(SampleItem.sample_id == sample_id)
        labeled = set(session.scalars(select(Annotation.completion_id).where(Annotation.completion_id.in_(in_sample))))
    missing = [row.completion_id for row in items if row.answer_language is None]
    if missing:
        raise SimulationError(
            f"{len(missing)} sampled items have no oracle label (e.g. {missing[0]!r}); not a demo sample"
        )
    truth = {row.completion_id: (row.answer_language, row.matches_gold, row.correct) for row in items}
    size: dict[str, int] = defaultdict(int)
    done: dict[str, int] = defaultdict(int)
    for row in items:
        size[row.query_language] += 1
        done[row.query_language] += row.completion_id in labeled
    readers = _accounts(engine, sorted(size), annotator_names)
    budget = np.inf if n is None else n
    new_items = turn = 0
    open_languages = {language for language in size if readers.get(language)}
    while open_languages:
        language = min(open_languages, key=lambda key: (done[key] / size[key], key))
        accounts = readers[language]
        # Small batches, so a partial run (n given) still spreads over the languages.
        batch = int(np.clip(np.ceil((budget - new_items) / len(open_languages)), 1, _BATCH))
        for annotator_id in accounts[turn % len(accounts) :] + accounts[: turn % len(accounts)]:
            labels = []
            claimed = claim_batch(engine, annotator_id, batch)
            for item in claimed:
                first_label = item.completion_id not in labeled  # routing offers slot 2 only after slot 1
                if first_label and new_items >= budget:
                    break
                answer, matches_gold, correct = _label(truth[item.completion_id], error_rate, rng)
                seconds = float(np.clip(rng.lognormal(np.log(_MEDIAN_SECONDS), _SIGMA), 3, 600))
                labels.append(Label(item.completion_id, answer, matches_gold, correct, seconds_spent=round(seconds, 1)))
                if first_label:
                    labeled.add(item.completion_id)
                    new_items += 1
                    done[item.query_language] += 1
            submit_batch(engine, annotator_id, labels)
            if len(labels) < len(claimed):
                release(engine, annotator_id)  # claims past the budget go back untouched
            if labels:
                break
        else:
            open_languages.discard(language)
        turn += 1
    return new_items
