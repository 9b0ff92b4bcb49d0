"""g-hat of the study's outcomes: the learner's cross-fitted predictions over the whole analysis frame.

g-hat depends on the data and the learner, not on the regression, so :func:`study_predictions`
cross-fits once per outcome and every estimand of :mod:`stats.estimands` reuses the predictions
of its rows. The learner's inputs for each outcome are :data:`LEARNER_INPUTS`;
:func:`predicting` cross-fits several outcomes at once while the caller works.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from stats.cache import AnalysisCache, cached
from stats.crossfit import CrossFitSettings, _blas_controller, cross_fit_distinct, distinct_inputs, fold_table
from stats.learners import Learner

__all__ = ["LEARNER_INPUTS", "predicting", "study_predictions"]

#: Gold outcome -> (surrogate, further learner features) for g-hat. ``log_chars`` is
#: ``log(1 + completion_chars)``; numeric inputs with missing values (``pred_correct`` where the
#: judge failed) are mean-filled and get a ``<name>_missing`` indicator.
LEARNER_INPUTS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "fidelity": (
        "pred_fidelity",
        ("pred_probability", "log_chars", "image", "query_language", "model", "benchmark"),
    ),
    "correct": (
        "pred_correct",
        ("pred_fidelity", "pred_probability", "log_chars", "image", "query_language", "model", "benchmark"),
    ),
}


def study_predictions(
    frame: pd.DataFrame,
    outcome: str = "fidelity",
    *,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    learner: Learner | None = None,
    folds: NDArray[np.integer] | None = None,
    cache: AnalysisCache | None = None,
) -> NDArray[np.float64]:
    """Cross-fitted g-hat of ``outcome`` for every row of the frame, shape (sample_split, N).

    Learner inputs are :data:`LEARNER_INPUTS` ``[outcome]``. Labeled rows are those with a gold
    ``outcome``; compute this once and pass it as ``g_hat`` to the estimand functions. ``folds``
    (:func:`stats.crossfit.fold_table`) replaces the draws from ``seed``; ``cache`` keeps the
    learner inputs (they do not depend on the labels) for the next call on the same population.
    """

    def prepare() -> Any:
        prediction, features = LEARNER_INPUTS[outcome]
        inputs, names = _learner_inputs_frame(frame, [prediction, *features])
        return distinct_inputs(inputs, names)

    return cross_fit_distinct(
        cached(cache, ("learner inputs", outcome), prepare),
        frame[outcome].to_numpy(dtype=np.float64),
        cross_fit=cross_fit,
        sample_split=sample_split,
        seed=seed,
        learner=learner,
        folds=folds,
    )[0]


@contextmanager
def predicting(
    frame: pd.DataFrame,
    outcomes: Sequence[str],
    settings: CrossFitSettings,
    cache: AnalysisCache | None = None,
) -> Iterator[dict[str, Future[NDArray[np.float64]]]]:
    """The g-hat of each outcome being computed: :func:`study_predictions` for them in turn with
    one generator, running in two threads while the caller works (on the first outcome's cells).

    The folds are drawn up front in that order (and kept for the next recompute when the seed
    is an int: they depend on nothing else), so the outcomes can be cross-fitted at once: the
    fits and predictions spend most of their time in NumPy, outside the GIL.
    """
    cross_fit, sample_split, seed = settings.cross_fit, settings.sample_split, settings.seed
    if isinstance(seed, (int, np.integer)):
        draws = _fold_draws(int(seed), len(frame), cross_fit, sample_split, len(outcomes))
    else:
        draws = tuple(fold_table(len(frame), cross_fit, sample_split, seed) for _ in outcomes)
    common: dict[str, Any] = dict(cross_fit=cross_fit, sample_split=sample_split, learner=settings.learner, cache=cache)
    # One BLAS thread throughout: the cross-fits limit it themselves, and nested limits set
    # from two threads would otherwise leave it at one for the rest of the process.
    with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            outcome: pool.submit(study_predictions, frame, outcome, folds=folds, **common)
            for outcome, folds in zip(outcomes, draws, strict=True)
        }


@lru_cache(maxsize=2)
def _fold_draws(
    seed: int, n_rows: int, cross_fit: int, sample_split: int, n_outcomes: int
) -> tuple[NDArray[np.int8], ...]:
    """The fold tables of ``n_outcomes`` cross-fits drawn in turn from ``default_rng(seed)`` (read-only)."""
    rng = np.random.default_rng(seed)
    tables = tuple(fold_table(n_rows, cross_fit, sample_split, rng) for _ in range(n_outcomes))
    for table in tables:
        table.flags.writeable = False
    return tables


def _learner_inputs_frame(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Learner input columns; a numeric column with gaps is mean-filled and gets an indicator."""
    out: dict[str, pd.Series] = {}
    for column in columns:
        values = np.log1p(frame["completion_chars"].astype(np.float64)) if column == "log_chars" else frame[column]
        if pd.api.types.is_numeric_dtype(values) and values.isna().any():
            out[column] = values.fillna(values.mean()).fillna(0.0)
            out[f"{column}_missing"] = values.isna().astype(np.float64)
        else:
            out[column] = values
    return pd.DataFrame(out).reset_index(drop=True), list(out)
