"""The study's estimands on the analysis frame, each by three estimators side by side.

The analysis frame has one row per completion (column contract: ``completion_id, model,
benchmark, query_language, image, llm, vision_encoder, train_language, stratum, sample_prob,
labeled, fidelity, correct, pred_fidelity, pred_probability, pred_correct, completion_chars``).

Estimands (population = all completions of the covered strata, see :mod:`stats.design`):

* ``image_effect`` -- image-induced change, the coefficient ``b_1`` of ``outcome ~ image`` within a
  model x benchmark cell (optionally also by query language). With a binary regressor it is the
  difference in mean outcome with and without image; for ``fidelity`` it is the image-induced
  fidelity loss IFL (negative = loss), for ``correct`` the image-induced change in accuracy.
* ``interaction`` -- per target language, ``fidelity ~ image + image:llm + image:vision +
  image:data`` on the ablation models: how the image effect differs from the reference LLaVA
  (llm ``vicuna``, vision ``clip``, data ``en``) when one component is swapped.

Estimators: ``dsl`` (cross-fitted DSL, :func:`stats.dsl`), ``surrogate`` (OLS of the surrogate on
all rows: no labels, biased) and ``labeled`` (design-weighted regression on the gold labels only).
Each estimand is one formula fitted in every cell by :func:`stats.cells.fit_cells`; this module
says which formula, on which rows and cells, and tabulates the fits.

Variance (``variance``): ``design`` (the default) treats the population as fixed and the labels as
a stratified simple random sample: DSL's correction term and the labeled estimator get the
stratified linearisation variance with finite-population correction and t intervals
(:func:`stats.design.survey_regression`). ``sandwich`` is R's ``dsl`` (and HC1 weighted least
squares for the labeled estimator), normal / t intervals.

Identification: a cell is estimated from labels only where every arm or level of every
regressor (each 0/1 column of the design matrix, both its values) has at least ``min_labels``
gold labels and the labeled design matrix has full rank. Elsewhere the label-based estimators
report ``status == "not_estimable"`` and ``needs`` says about how many more labels in which
strata would do; :data:`stats.cells.MIN_LABELS` is chosen by simulation (docs/stats.md).

Missing gold answers: items whose ``correct`` is NA ("cannot tell") count as unlabeled for the
accuracy estimands, and each stratum's inclusion probability becomes (items with a definite
answer) / ``N_h``. This is valid if "cannot tell" is missing at random within stratum; it then
targets accuracy over all completions of the stratum.

Speed: g-hat depends on the data and the learner, not on the regression, so
:func:`stats.ghat.study_predictions` cross-fits once over the whole frame per outcome and every
estimand reuses the predictions of its rows (``g_hat=``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from stats._formula import formula_outcome, with_outcome
from stats.cache import AnalysisCache, cached
from stats.cells import ESTIMATORS, LABEL_ESTIMATORS, MIN_LABELS, EstimandFit, fit_cells, labeling
from stats.crossfit import CrossFitSettings
from stats.design import InterimDesign, interim_design
from stats.ghat import predicting, study_predictions
from stats.learners import Learner
from stats.tables import power_table, tidy_estimates

__all__ = [
    "ABLATION_COLUMNS",
    "ABLATION_REFERENCE",
    "INTERACTION_FORMULA",
    "SURROGATE",
    "StudyAnalysis",
    "ablation_frame",
    "analyse_study",
    "image_effect_fits",
    "image_effect_table",
    "interaction_fits",
    "interaction_table",
    "outcome_design",
]

#: Gold outcome -> its surrogate column.
SURROGATE: Mapping[str, str] = {"fidelity": "pred_fidelity", "correct": "pred_correct"}
#: Formula variable -> analysis-frame column, for the ablation (interaction) regression.
ABLATION_COLUMNS: Mapping[str, str] = {"llm": "llm", "vision": "vision_encoder", "data": "train_language"}
#: Reference level of each ablation variable: the original LLaVA.
ABLATION_REFERENCE: Mapping[str, str] = {"llm": "vicuna", "vision": "clip", "data": "en"}
INTERACTION_FORMULA = "fidelity ~ image + image:llm + image:vision + image:data"


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything :func:`analyse_study` computes.

    Attributes
    ----------
    estimates : DataFrame
        Tidy estimates (:data:`stats.tables.TIDY_COLUMNS`) of every estimand, outcome and estimator.
    power : DataFrame
        For each DSL estimate: SE and CI half-width now and with twice the labels, and the labels
        needed for ``target_halfwidth``.
    designs : dict
        Outcome -> :class:`stats.InterimDesign` (the effective design each outcome was analysed with).
    fits : list of EstimandFit
        The fitted results behind the tables.
    notes : list of str
        Coverage and anything that could not be estimated.
    """

    estimates: pd.DataFrame
    power: pd.DataFrame
    designs: dict[str, InterimDesign]
    fits: list[EstimandFit]
    notes: list[str] = field(default_factory=list)


def outcome_design(frame: pd.DataFrame, outcome: str = "fidelity") -> InterimDesign:
    """Interim design for an outcome: labeled = gold ``outcome`` present (so NA answers do not count)."""
    return interim_design(frame["stratum"], frame[outcome].notna(), frame["sample_prob"])


def _predict(
    frame: pd.DataFrame, outcome: str, settings: CrossFitSettings, cache: AnalysisCache | None
) -> Callable[[], NDArray[np.float64]]:
    """:func:`stats.ghat.study_predictions` of ``outcome`` with these settings, when called (only
    where DSL needs it)."""
    return lambda: study_predictions(frame, outcome, cache=cache, **settings.arguments())


def image_effect_fits(
    frame: pd.DataFrame,
    outcome: str = "fidelity",
    *,
    per_language: bool = False,
    by: Sequence[str] = ("model", "benchmark"),
    estimators: Sequence[str] = ESTIMATORS,
    g_hat: NDArray[np.float64] | None = None,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    learner: Learner | None = None,
    variance: str = "design",
    min_labels: int = MIN_LABELS,
    point_only: bool = False,
    cache: AnalysisCache | None = None,
) -> list[EstimandFit]:
    """Image effect ``b_1`` of ``outcome ~ image`` in every model x benchmark cell (x language).

    Parameters
    ----------
    frame : DataFrame
        The analysis frame (all rows; g-hat rows must align with it).
    outcome : {"fidelity", "correct"}
    per_language : bool
        Also split cells by ``query_language``.
    by : sequence of str
        Cell-defining columns (default model and benchmark).
    estimators : sequence of {"dsl", "surrogate", "labeled"}
    g_hat : ndarray (S, N), optional
        Precomputed :func:`stats.ghat.study_predictions` for ``outcome``; computed here if omitted.
    cross_fit, sample_split, seed, learner
        For computing g-hat when it is not given.
    variance : {"design", "sandwich"}
        Design-based variance with t intervals (default), or R's sandwich (see the module notes).
    min_labels : int
        Labels each image arm of a cell needs before the label-based estimators report it.
    point_only : bool
        Coefficients only (each result has ``params`` alone), for the label-based estimators
        under the design variance: what the "can't tell" bounds need, without the variances.
    cache : AnalysisCache, optional
        Keeps what depends on the population alone for the next call (see :class:`AnalysisCache`).
    """
    cells = list(by) + (["query_language"] if per_language else [])
    formula = f"{outcome} ~ image"
    return fit_cells(
        frame,
        outcome,
        formula,
        cells,
        "image_effect",
        estimators,
        g_hat,
        _predict(frame, outcome, CrossFitSettings(cross_fit, sample_split, seed, learner), cache),
        surrogate=SURROGATE[outcome],
        report_terms=("image",),
        variance=variance,
        min_labels=min_labels,
        point_only=point_only,
        cache=cache,
        cells_key="image_effect",
    )


def image_effect_table(
    frame: pd.DataFrame, outcome: str = "fidelity", *, alpha: float = 0.05, **kwargs: Any
) -> pd.DataFrame:
    """Tidy table of :func:`image_effect_fits` (``term`` is ``image``); keyword arguments as there."""
    return tidy_estimates(image_effect_fits(frame, outcome, **kwargs), alpha=alpha)


def ablation_frame(frame: pd.DataFrame, reference: Mapping[str, str] = ABLATION_REFERENCE) -> pd.DataFrame:
    """Rows of the ablation models, with formula variables ``llm``, ``vision``, ``data``.

    Each is a categorical copy of its :data:`ABLATION_COLUMNS` column whose first category is the
    reference level, so patsy's default treatment coding contrasts every other level with the
    reference (terms like ``image:llm[T.qwen2]``). Rows missing any component (models outside the
    ablation) are dropped; unused levels are removed.
    """
    columns = list(ABLATION_COLUMNS.values())
    rows = frame.loc[frame[columns].notna().all(axis=1)]
    if rows.empty:
        raise ValueError("no rows of ablation models (llm, vision_encoder, train_language all set)")
    renamed = {}
    for variable, column in ABLATION_COLUMNS.items():
        levels = sorted(rows[column].astype(str).unique())
        if reference[variable] not in levels:
            raise ValueError(f"reference level {reference[variable]!r} of {variable!r} is not in the data")
        ordered = [reference[variable]] + [level for level in levels if level != reference[variable]]
        renamed[variable] = pd.Categorical(rows[column].astype(str), categories=ordered)
    return rows.assign(**renamed)


def interaction_fits(
    frame: pd.DataFrame,
    formula: str = INTERACTION_FORMULA,
    *,
    languages: Sequence[str] = ("zho", "deu"),
    reference: Mapping[str, str] = ABLATION_REFERENCE,
    estimators: Sequence[str] = ESTIMATORS,
    g_hat: NDArray[np.float64] | None = None,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    learner: Learner | None = None,
    variance: str = "design",
    min_labels: int = MIN_LABELS,
    point_only: bool = False,
    cache: AnalysisCache | None = None,
) -> list[EstimandFit]:
    """The ablation interaction regression, per target language (paper Section 4.2, Table 4).

    Parameters
    ----------
    frame : DataFrame
        The analysis frame (all rows; g-hat rows align with it).
    formula : str
        patsy formula on the variables of :func:`ablation_frame`; its outcome (``fidelity`` or
        ``correct``) selects surrogate and g-hat.
    languages : sequence of str
        Target query languages, one regression each.
    reference : mapping
        Reference level per ablation variable.
    estimators, g_hat, cross_fit, sample_split, seed, learner, variance, min_labels, point_only, cache
        As in :func:`image_effect_fits` (``min_labels`` per level of every regressor).
    """
    outcome = formula_outcome(formula)
    fits = fit_cells(
        frame,
        outcome,
        formula,
        ["query_language"],
        "interaction",
        estimators,
        g_hat,
        _predict(frame, outcome, CrossFitSettings(cross_fit, sample_split, seed, learner), cache),
        surrogate=SURROGATE[outcome],
        prepare=lambda rows: ablation_frame(rows, reference),
        prepare_columns=list(ABLATION_COLUMNS.values()),
        restrict=np.flatnonzero(frame["query_language"].isin(list(languages)).to_numpy()),
        variance=variance,
        min_labels=min_labels,
        point_only=point_only,
        cache=cache,
        cells_key=("interaction", tuple(languages), tuple(sorted(reference.items()))),
    )
    found = {fit.language for fit in fits}
    missing = [
        EstimandFit(
            "interaction",
            outcome,
            None,
            None,
            language,
            (),
            0,
            0,
            {e: None for e in estimators},
            note="no covered rows in this language",
        )
        for language in languages
        if language not in found
    ]
    return fits + missing


def interaction_table(
    frame: pd.DataFrame, formula: str = INTERACTION_FORMULA, *, alpha: float = 0.05, **kwargs: Any
) -> pd.DataFrame:
    """Tidy table of :func:`interaction_fits`; keyword arguments as there."""
    return tidy_estimates(interaction_fits(frame, formula, **kwargs), alpha=alpha)


def analyse_study(
    frame: pd.DataFrame,
    *,
    outcomes: Sequence[str] = ("fidelity", "correct"),
    per_language: bool = False,
    languages: Sequence[str] = ("zho", "deu"),
    interaction_formula: str = INTERACTION_FORMULA,
    estimators: Sequence[str] = ESTIMATORS,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    learner: Learner | None = None,
    alpha: float = 0.05,
    target_halfwidth: float | None = 0.05,
    variance: str = "design",
    min_labels: int = MIN_LABELS,
    cache: AnalysisCache | None = None,
) -> StudyAnalysis:
    """All estimands of the study, for each outcome, by each estimator, plus power and coverage.

    For each outcome g-hat is cross-fitted once over the whole frame (:func:`stats.ghat.study_predictions`)
    and reused by every estimand. The interaction formula's outcome is replaced by each outcome in
    turn. ``variance`` and ``min_labels`` as in :func:`image_effect_fits`.

    Accuracy treats "cannot tell" (a labeled item whose ``correct`` is NA) as missing at random;
    ``bound_low``/``bound_high`` give the label-based estimates under the two extreme readings,
    every such item wrong and every such item right (equal to the estimate when there is none).

    ``cache`` (:class:`AnalysisCache`) keeps what depends on the population alone between calls on
    frames that differ in their gold labels only: learner inputs, cells, designs, surrogate fits.
    """
    # Without a cache from the caller one serves this call: the estimates and the bounds share cells.
    cache = AnalysisCache() if cache is None else cache
    cache.check(len(frame))
    # Every estimand looks rows up by stratum: as a categorical that is a pass over integer codes,
    # not over 775k strings, each time (issue 10).
    frame = frame.assign(stratum=cached(cache, "stratum", lambda: pd.Categorical(frame["stratum"])))
    fits: list[EstimandFit] = []
    designs: dict[str, InterimDesign] = {}
    notes: list[str] = []
    scenarios: dict[str, list[pd.DataFrame]] = {}
    g_hats = (
        predicting(frame, outcomes, CrossFitSettings(cross_fit, sample_split, seed, learner), cache)
        if "dsl" in estimators
        else nullcontext(dict[str, Future[NDArray[np.float64]]]())
    )
    # The first outcome's cells are fitted while the second outcome is still being cross-fitted.
    with g_hats as running:
        for outcome in outcomes:
            g_hat = running[outcome].result() if outcome in running else None
            designs[outcome] = labeling(frame, frame[outcome].notna().to_numpy(), cache)[0]
            notes.append(f"{outcome}: {designs[outcome].describe()}")
            common: dict[str, Any] = dict(
                estimators=estimators, g_hat=g_hat, variance=variance, min_labels=min_labels, cache=cache
            )
            fits += image_effect_fits(frame, outcome, per_language=per_language, **common)
            formula = with_outcome(interaction_formula, outcome)
            fits += interaction_fits(frame, formula, languages=languages, **common)
            if outcome == "correct":
                # Only the label-based estimates; under the design variance without their variances.
                bounds: dict[str, Any] = dict(
                    common,
                    estimators=[e for e in estimators if e in LABEL_ESTIMATORS],
                    point_only=variance == "design",
                )
                scenarios[outcome] = [
                    _estimate_table(
                        image_effect_fits(filled, outcome, per_language=per_language, **bounds)
                        + interaction_fits(filled, formula, languages=languages, **bounds)
                    )
                    for filled in _cannot_tell_scenarios(frame, outcome)
                ]
    notes += [
        f"{f.estimand}/{f.outcome} {f.model or ''} {f.benchmark or ''} {f.language or ''}: {f.note}".replace("  ", " ")
        for f in fits
        if f.note
    ]
    return StudyAnalysis(
        estimates=_with_bounds(tidy_estimates(fits, alpha), scenarios),
        power=power_table(fits, target_halfwidth=target_halfwidth, alpha=alpha),
        designs=designs,
        fits=fits,
        notes=notes,
    )


def _cannot_tell_scenarios(frame: pd.DataFrame, outcome: str) -> list[pd.DataFrame]:
    """The frame with every labeled-but-NA ``outcome`` read as 0, and as 1 (none if there is no NA)."""
    cannot_tell = frame["labeled"].to_numpy(dtype=bool) & frame[outcome].isna().to_numpy()
    if not cannot_tell.any():
        return []
    return [frame.assign(**{outcome: frame[outcome].mask(cannot_tell, value)}) for value in (0.0, 1.0)]


def _estimate_table(fits: Sequence[EstimandFit]) -> pd.DataFrame:
    """The ``estimate`` column of :func:`tidy_estimates` with its keys, from ``params`` alone."""
    return pd.DataFrame.from_records(
        [
            {
                **fit.keys(term),
                "estimator": estimator,
                "estimate": result.params[term] if result is not None and term in result.params.index else np.nan,
            }
            for fit in fits
            for estimator, result in fit.results.items()
            for term in fit.terms or (None,)
        ],
        columns=["estimand", "outcome", "model", "benchmark", "language", "term", "estimator", "estimate"],
    )


def _with_bounds(estimates: pd.DataFrame, scenarios: Mapping[str, list[pd.DataFrame]]) -> pd.DataFrame:
    """Fill ``bound_low``/``bound_high`` of each outcome's label-based rows from its NA scenarios."""
    keys = ["estimand", "outcome", "model", "benchmark", "language", "term", "estimator"]
    estimates = estimates.copy()
    for outcome, tables in scenarios.items():
        rows = (estimates["outcome"] == outcome) & estimates["estimator"].isin(LABEL_ESTIMATORS)
        if not tables:  # no "cannot tell": the assumption carries nothing
            estimates.loc[rows, "bound_low"] = estimates.loc[rows, "estimate"]
            estimates.loc[rows, "bound_high"] = estimates.loc[rows, "estimate"]
            continue
        wrong, right = (
            estimates.loc[rows, keys].merge(table[[*keys, "estimate"]], on=keys, how="left")["estimate"].to_numpy()
            for table in tables
        )
        estimates.loc[rows, "bound_low"] = np.fmin(wrong, right)  # NaN only where neither scenario has one
        estimates.loc[rows, "bound_high"] = np.fmax(wrong, right)
    return estimates
