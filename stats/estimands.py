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

Variance (``variance``): ``design`` (the default) treats the population as fixed and the labels as
a stratified simple random sample: DSL's correction term and the labeled estimator get the
stratified linearisation variance with finite-population correction and t intervals
(:func:`stats.design.survey_regression`). ``sandwich`` is R's ``dsl`` (and HC1 weighted least
squares for the labeled estimator), normal / t intervals.

Identification: a cell is estimated from labels only where every arm or level of every
regressor (each 0/1 column of the design matrix, both its values) has at least ``min_labels``
gold labels and the labeled design matrix has full rank. Elsewhere the label-based estimators
report ``status == "not_estimable"`` and ``needs`` says about how many more labels in which
strata would do; :data:`MIN_LABELS` is chosen by simulation (docs/stats.md).

Missing gold answers: items whose ``correct`` is NA ("cannot tell") count as unlabeled for the
accuracy estimands, and each stratum's inclusion probability becomes (items with a definite
answer) / ``N_h``. This is valid if "cannot tell" is missing at random within stratum; it then
targets accuracy over all completions of the stratum.

Speed: g-hat depends on the data and the learner, not on the regression, so
:func:`study_predictions` cross-fits once over the whole frame per outcome and every estimand
reuses the predictions of its rows (``g_hat=``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

import numpy as np
import pandas as pd
import patsy
from numpy.typing import NDArray
from scipy import stats as sps

from stats._formula import formula_names, formula_outcome, with_outcome
from stats.baselines import labeled_ols, labeled_survey_design, labeled_survey_estimate, surrogate_ols_design
from stats.cache import AnalysisCache, cached
from stats.crossfit import CrossFitSettings, _blas_controller, cross_fit_distinct, distinct_inputs, fold_table
from stats.design import InterimDesign, interim_design, interim_sample_prob, stratum_sizes
from stats.dsl import (
    _EVAL_ENV,
    VARIANCES,
    CellDesign,
    DSLResults,
    dsl,
    dsl_design_estimate,
    dsl_design_matrix,
    dsl_design_sums,
)
from stats.learners import Learner
from stats.power import labels_for_halfwidth, power_dsl

__all__ = [
    "ABLATION_COLUMNS",
    "ABLATION_REFERENCE",
    "ESTIMATORS",
    "INTERACTION_FORMULA",
    "LEARNER_INPUTS",
    "MIN_LABELS",
    "STATUS_NOT_ESTIMABLE",
    "STATUS_OK",
    "SURROGATE",
    "TIDY_COLUMNS",
    "EstimandFit",
    "StudyAnalysis",
    "ablation_frame",
    "analyse_study",
    "identification_shortfall",
    "image_effect_fits",
    "image_effect_table",
    "interaction_fits",
    "interaction_table",
    "outcome_design",
    "power_table",
    "study_predictions",
    "tidy_estimates",
]

ESTIMATORS: tuple[str, ...] = ("dsl", "surrogate", "labeled")
#: Gold outcome -> its surrogate column.
SURROGATE: Mapping[str, str] = {"fidelity": "pred_fidelity", "correct": "pred_correct"}
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
#: Formula variable -> analysis-frame column, for the ablation (interaction) regression.
ABLATION_COLUMNS: Mapping[str, str] = {"llm": "llm", "vision": "vision_encoder", "data": "train_language"}
#: Reference level of each ablation variable: the original LLaVA.
ABLATION_REFERENCE: Mapping[str, str] = {"llm": "vicuna", "vision": "clip", "data": "en"}
INTERACTION_FORMULA = "fidelity ~ image + image:llm + image:vision + image:data"
TIDY_COLUMNS: tuple[str, ...] = (
    "estimand",
    "outcome",
    "model",
    "benchmark",
    "language",
    "term",
    "estimator",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "n_labeled",
    "df",
    "status",
    "needs",
    "bound_low",
    "bound_high",
)
#: Fewest gold labels each arm / level of a regressor needs before a cell is estimated from
#: labels (measured: docs/stats.md, "Identification").
MIN_LABELS = 2
STATUS_OK, STATUS_NOT_ESTIMABLE = "ok", "not_estimable"
#: Estimators that rest on the gold labels (the identification check applies to them).
_LABEL_ESTIMATORS = ("dsl", "labeled")


def _labeling(
    frame: pd.DataFrame, labeled: NDArray[np.bool_], cache: AnalysisCache | None
) -> tuple[InterimDesign, NDArray[np.float64]]:
    """:func:`outcome_design` and :func:`stats.design.interim_sample_prob` for the rows ``labeled``;
    with a cache kept for these labels (the estimands of one outcome share them)."""

    def compute() -> tuple[InterimDesign, NDArray[np.float64]]:
        design = interim_design(frame["stratum"], labeled, frame["sample_prob"])
        return design, interim_sample_prob(frame["stratum"], labeled)

    key = ("labeling", hashlib.blake2b(np.packbits(labeled).tobytes(), digest_size=16).digest(), len(labeled))
    return cast(tuple[InterimDesign, NDArray[np.float64]], cached(cache, key, compute, of_labels=True))


@dataclass(frozen=True)
class EstimandFit:
    """One estimand on one population cell, fitted by each estimator.

    ``results`` maps estimator name to a results object with ``params``, ``bse`` and
    ``conf_int(alpha)`` (:class:`stats.DSLResults` or statsmodels), or to None where the estimator
    could not run (no labels, or a singular design); ``note`` then says why.
    """

    estimand: str
    outcome: str
    model: str | None
    benchmark: str | None
    language: str | None
    terms: tuple[str, ...]
    n: int
    n_labeled: int
    results: Mapping[str, Any]
    note: str = ""
    #: Empty when the labels identify the cell, else "not yet estimable: needs about ...".
    needs: str = ""


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything :func:`analyse_study` computes.

    Attributes
    ----------
    estimates : DataFrame
        Tidy estimates (:data:`TIDY_COLUMNS`) of every estimand, outcome and estimator.
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


def _study_predictions(
    frame: pd.DataFrame,
    outcomes: Sequence[str],
    settings: CrossFitSettings,
    cache: AnalysisCache | None = None,
) -> dict[str, NDArray[np.float64]]:
    """g-hat of each outcome, as :func:`study_predictions` called for them in turn with one generator."""
    with _predicting(frame, outcomes, settings, cache) as running:
        return {outcome: future.result() for outcome, future in running.items()}


@contextmanager
def _predicting(
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
        Precomputed :func:`study_predictions` for ``outcome``; computed here if omitted.
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
    return _fit_cells(
        frame,
        outcome,
        formula,
        cells,
        "image_effect",
        estimators,
        g_hat,
        CrossFitSettings(cross_fit, sample_split, seed, learner),
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
    fits = _fit_cells(
        frame,
        outcome,
        formula,
        ["query_language"],
        "interaction",
        estimators,
        g_hat,
        CrossFitSettings(cross_fit, sample_split, seed, learner),
        prepare=lambda rows: ablation_frame(rows, reference),
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


def _fit_cells(
    frame: pd.DataFrame,
    outcome: str,
    formula: str,
    cells: list[str],
    estimand: str,
    estimators: Sequence[str],
    g_hat: NDArray[np.float64] | None,
    crossfit: CrossFitSettings,
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    restrict: NDArray[np.intp] | None = None,
    report_terms: tuple[str, ...] | None = None,
    variance: str = "design",
    min_labels: int = MIN_LABELS,
    point_only: bool = False,
    cache: AnalysisCache | None = None,
    cells_key: Hashable = None,
) -> list[EstimandFit]:
    """Fit one formula by each estimator in every cell of the covered population.

    ``prepare`` turns a cell's rows into the regression data (the interaction regression's
    :func:`ablation_frame`); ``restrict`` limits the rows (positions in ``frame``);
    ``report_terms`` are the terms to tabulate (default: all but the intercept). A cell whose
    labels fail :func:`identification_shortfall` is not given to the label-based estimators.
    With a ``cache``, the cells (rows, design matrices, surrogate-only fits: nothing that
    depends on labels but which strata have some) are kept under ``cells_key``, which names
    ``prepare`` and ``restrict``.
    """
    unknown = set(estimators) - set(_FITS)
    if unknown:
        raise ValueError(f"unknown estimators {sorted(unknown)}; choose from {ESTIMATORS}")
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; choose from {VARIANCES}")
    if point_only and (variance != "design" or not set(estimators) <= set(_LABEL_ESTIMATORS)):
        raise ValueError("point_only is for the label-based estimators under the design variance")
    if "dsl" in estimators and g_hat is None:
        g_hat = study_predictions(frame, outcome, cache=cache, **crossfit.arguments())
    dsl_g_hat = cast(NDArray[np.float64], g_hat)  # set whenever "dsl" is asked for, and only dsl reads it
    gold_values = frame[outcome].to_numpy(dtype=np.float64)
    labeled = ~np.isnan(gold_values)
    design, pi = _labeling(frame, labeled, cache)
    rhs = formula.split("~", 1)[1].strip()
    key = ("cells", outcome, rhs, tuple(cells), cells_key if cache is not None else None)
    structure: _Cells = cached(
        cache,
        (*key, tuple(design.covered_strata)),
        lambda: _cell_structure(frame, outcome, formula, cells, design, prepare, restrict),
    )
    cell_strata: dict[tuple[Any, ...], list[Any]] = cached(
        cache, (*key, "strata"), lambda: _cell_strata(frame, cells, restrict, ablation_only=prepare is not None)
    )
    empty_strata = set(design.empty_strata)
    fits = []
    for cell in structure:
        data, x, position, problems = cell.data, cell.x, cell.position, list(cell.problems)
        if len(data) and variance == "sandwich":  # the general functions take the cell's rows
            data = data.assign(**{outcome: gold_values[position]})
        results: dict[str, Any] = dict.fromkeys(estimators)
        gold = gold_values[position]
        needs = _shortfall(x, ~np.isnan(gold), cell.strata, cell.sizes, min_labels) if x is not None else ""
        # Sampled strata of the cell with no label yet: the label-based estimators would have to
        # leave their rows out, which silently changes the cell's population.
        empty = sorted(str(stratum) for stratum in cell_strata.get(cell.key, ()) if stratum in empty_strata)
        if empty and not needs:  # part of the cell's population has no label to stand for it
            needs = _needs_sentence(len(empty), empty)
        context = _CellFit(cell, structure, formula, outcome, data, gold, pi[position], dsl_g_hat, variance, point_only)
        for estimator in estimators if len(data) else ():
            if needs and estimator in _LABEL_ESTIMATORS:
                continue
            try:
                results[estimator] = _FITS[estimator](context)
            except (np.linalg.LinAlgError, ValueError) as error:
                results[estimator] = None
                problems.append(f"{estimator}: {error}")
        fitted = [r for r in results.values() if r is not None]
        fits.append(
            EstimandFit(
                estimand=estimand,
                outcome=outcome,
                model=cell.labels.get("model"),
                benchmark=cell.labels.get("benchmark"),
                language=cell.labels.get("query_language"),
                terms=report_terms or (tuple(t for t in fitted[0].params.index if t != "Intercept") if fitted else ()),
                n=len(data),
                n_labeled=int(labeled[position].sum()),
                results=results,
                note="; ".join(problems),
                needs=needs,
            )
        )
    return fits


@dataclass(frozen=True)
class _CellFit:
    """What an estimator is given to fit one cell (see :data:`_FITS`): the cell, its rows' gold
    labels and effective probabilities, the frame's g-hat, and how to fit."""

    cell: _Cell
    cells: _Cells
    formula: str
    outcome: str
    data: pd.DataFrame
    gold: NDArray[np.float64]
    pi: NDArray[np.float64]
    g_hat: NDArray[np.float64]
    variance: str
    point_only: bool

    @property
    def design_args(self) -> tuple[NDArray[np.float64], NDArray[Any], NDArray[np.float64]]:
        return self.pi, self.cell.strata, self.cell.sizes


def _fit_surrogate(fit: _CellFit) -> Any:
    """OLS of the surrogate on every row of the cell (HC1): needs no label, fitted once per cell."""
    return fit.cell.surrogate_fit()


def _fit_dsl(fit: _CellFit) -> Any:
    """DSL: R's sandwich on the cell's rows, else the design variance from g-hat's per-pattern
    sums (:func:`stats.dsl.dsl_design_sums`) or, where the design has a missing value, from its rows."""
    cell, position = fit.cell, fit.cell.position
    if fit.variance == "sandwich":
        return dsl("lm", fit.formula, fit.data, fit.outcome, sample_prob=fit.pi, g_hat=fit.g_hat[:, position])
    if cell.design is not None:
        patterns = slice(cell.offset, cell.offset + len(cell.design.counts))
        sums = fit.cells.pattern_sums(fit.g_hat)[:, patterns]
        max_sums = sums if fit.point_only else fit.cells.pattern_sums(fit.g_hat, of_max=True)[:, patterns]
        labeled_g = fit.g_hat[:, position[~np.isnan(fit.gold)]]
        result = dsl_design_sums(
            fit.formula, cell.design, fit.gold, labeled_g, sums, max_sums, *fit.design_args, point_only=fit.point_only
        )
        return _as_point(result)
    if fit.point_only:
        return _Coefficients(dsl_design_estimate(cell.x, fit.gold, fit.g_hat[:, position], *fit.design_args))
    return dsl_design_matrix(fit.formula, cell.x, fit.gold, fit.g_hat[:, position], *fit.design_args)


def _fit_labeled(fit: _CellFit) -> Any:
    """The design-weighted regression on the gold labels alone (R's sandwich: HC1 weighted OLS)."""
    if fit.variance == "sandwich":
        return labeled_ols(fit.formula, fit.data, fit.pi)
    if fit.point_only:
        return _Coefficients(labeled_survey_estimate(fit.cell.x, fit.gold, *fit.design_args))
    return labeled_survey_design(fit.cell.x, fit.gold, *fit.design_args)


#: Estimator name -> how it fits one cell: the registry behind :data:`ESTIMATORS`.
_FITS: Mapping[str, Callable[[_CellFit], Any]] = {"dsl": _fit_dsl, "surrogate": _fit_surrogate, "labeled": _fit_labeled}


class _Cell:
    """One cell of an estimand on the covered population: what does not depend on the labels.

    ``data`` holds the cell's regression rows (population columns, ``_position`` in the frame,
    ``_stratum_size``), ``x`` their design matrix (None for a cell without rows), ``problems``
    why the cell could not be prepared. The surrogate-only fit uses no label: it is fitted once.
    """

    def __init__(
        self,
        key: tuple[Any, ...],
        labels: dict[str, Any],
        data: pd.DataFrame,
        x: pd.DataFrame | None,
        problems: list[str],
        surrogate: str,
    ) -> None:
        self.key, self.labels, self.data, self.x, self.problems = key, labels, data, x, problems
        self.position = data["_position"].to_numpy()
        self.strata = data["stratum"].to_numpy()
        self.sizes = data["_stratum_size"].to_numpy()
        self._surrogate = surrogate
        self._surrogate_fit: tuple[Any, Exception | None] | None = None
        #: For DSL from g-hat's per-pattern sums; None where the design has a missing value.
        self.design = CellDesign.of(x) if x is not None else None
        self.offset = 0  # of its patterns among all cells' (:class:`_Cells`)

    def surrogate_fit(self) -> Any:
        """:func:`stats.baselines.surrogate_ols_design` of the cell, fitted on first use (or its error)."""
        if self._surrogate_fit is None:
            try:
                self._surrogate_fit = (
                    surrogate_ols_design(self.x, self.data[self._surrogate].to_numpy(dtype=np.float64)),
                    None,
                )
            except (np.linalg.LinAlgError, ValueError) as error:
                self._surrogate_fit = (None, error)
        fit, failure = self._surrogate_fit
        if failure is not None:
            raise failure
        return fit


def _cell_structure(
    frame: pd.DataFrame,
    outcome: str,
    formula: str,
    cells: list[str],
    design: InterimDesign,
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None,
    restrict: NDArray[np.intp] | None,
) -> list[_Cell]:
    """The cells of the covered rows (of ``restrict``), each with its regression rows and design."""
    covered = design.covered(frame["stratum"])
    positions = np.flatnonzero(covered) if restrict is None else restrict[covered[restrict]]
    # Only the columns the formula and estimators use go to them: smaller copies, faster patsy.
    columns = set(formula_names(formula, frame.columns)) | {SURROGATE[outcome], "stratum"}
    columns.discard(outcome)
    if prepare is not None:
        columns |= set(ABLATION_COLUMNS.values())
    stratum_size = stratum_sizes(frame["stratum"])
    slim = frame[sorted(columns)].iloc[positions].assign(_position=positions, _stratum_size=stratum_size[positions])
    groups = frame[cells].iloc[positions].groupby(cells, sort=True, dropna=False).indices
    structure = _Cells()
    for key, members in groups.items():
        key = key if isinstance(key, tuple) else (key,)
        data = slim.iloc[members]
        problems = []
        if prepare is not None:
            try:
                data = prepare(data)
            except ValueError as error:  # e.g. the reference model is missing in this cell
                data, problems = data.iloc[:0], [str(error)]
        if len(data) == 0 and not problems:
            problems = ["no rows to analyse in this cell"]
        # One design per cell for the identification check and every estimator (issue 10).
        x = _cell_design(formula, data) if len(data) else None
        labels = dict(zip(cells, key, strict=True))
        structure.append(_Cell(key, labels, data, x, problems, SURROGATE[outcome]))
    structure.index_patterns(len(frame))
    return structure


class _Cells(list[_Cell]):
    """The cells of one estimand, with every cell's covariate patterns numbered across cells, so
    that DSL's per-pattern sums of g-hat for all cells take one pass over the rows per split."""

    def index_patterns(self, n_rows: int) -> None:
        offset, positions, patterns = 0, [], []
        for cell in self:
            if cell.design is not None:
                cell.offset = offset
                positions.append(cell.position)
                patterns.append(cell.design.patterns + offset)
                offset += len(cell.design.counts)
        self._positions: NDArray[np.intp] | None = (
            np.concatenate(positions) if positions else np.zeros(0, dtype=np.intp)
        )
        self._patterns: NDArray[np.intp] = np.concatenate(patterns) if patterns else np.zeros(0, dtype=np.intp)
        self._n_patterns = offset
        if 2 * len(self._patterns) > n_rows:
            # Most rows are in a cell: number every row (those in none get pattern ``offset``)
            # and sum over whole contiguous rows of g-hat instead of gathering them first.
            every = np.full(n_rows, offset, dtype=np.intp)
            every[np.concatenate(positions)] = self._patterns
            self._positions, self._patterns = None, every
        self._sums: dict[bool, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}

    def pattern_sums(self, g_hat: NDArray[np.float64], of_max: bool = False) -> NDArray[np.float64]:
        """Per split and pattern (all cells'): the sum of g-hat (or with ``of_max`` of ``max(g, 1 - g)``)
        over its rows; kept for the same g-hat array (the bounds' refits reuse the estimates' g-hat)."""
        kept = self._sums.get(of_max)
        if kept is not None and kept[0] is g_hat:
            return kept[1]
        sums = np.empty((len(g_hat), self._n_patterns))
        for split, values in enumerate(g_hat):
            values = values if self._positions is None else values[self._positions]
            if of_max:
                values = np.maximum(values, 1.0 - values)
            sums[split] = np.bincount(self._patterns, weights=values, minlength=self._n_patterns)[: self._n_patterns]
        self._sums[of_max] = (g_hat, sums)
        return sums


@dataclass(frozen=True)
class _Coefficients:
    """A point estimate without a variance (``point_only`` fits)."""

    params: pd.Series


def _as_point(result: DSLResults | pd.Series) -> Any:
    """A :func:`stats.dsl.dsl_design_sums` result as :func:`_fit_cells` reports it."""
    return _Coefficients(result) if isinstance(result, pd.Series) else result


def _cell_design(formula: str, data: pd.DataFrame) -> pd.DataFrame:
    """The cell's design matrix (right-hand side of ``formula``) on all its rows, NA kept as NaN."""
    return patsy.dmatrix(
        formula.split("~", 1)[1],
        data,
        NA_action=patsy.NAAction(NA_types=[]),
        eval_env=_EVAL_ENV,
        return_type="dataframe",
    )


def _cell_strata(
    frame: pd.DataFrame, cells: list[str], restrict: NDArray[np.intp] | None, ablation_only: bool
) -> dict[tuple[Any, ...], list[Any]]:
    """Cell key -> the strata of its rows (of ``restrict``; with ``ablation_only`` of the ablation
    models' rows), whether covered or not: a cell's sampled strata without labels are among them."""
    rows = frame.iloc[restrict] if restrict is not None else frame
    if ablation_only:
        rows = rows.loc[rows[list(ABLATION_COLUMNS.values())].notna().all(axis=1)]
    pairs = rows[[*cells, "stratum"]].drop_duplicates()
    strata: dict[tuple[Any, ...], list[Any]] = {}
    for values in pairs.itertuples(index=False, name=None):
        strata.setdefault(tuple(values[:-1]), []).append(values[-1])
    return strata


def identification_shortfall(
    formula: str, data: pd.DataFrame, outcome: str, min_labels: int = MIN_LABELS, *, design: pd.DataFrame | None = None
) -> str:
    """Why the gold labels of a cell cannot yet identify the regression; "" if they can.

    Every 0/1 column of the design matrix (an image arm, a level of an ablation component) needs
    at least ``min_labels`` labeled rows with each of its values, and the labeled design matrix
    full rank. The sentence estimates the labels still needed: for a group short of ``d``
    labels whose rows make up a share ``N_g / N_S`` of the strata they live in (sizes from the
    ``_stratum_size`` column, else the rows given), about ``d * N_S / N_g`` more labels in those
    strata, assuming annotation keeps spreading evenly over them. ``design`` is the formula's
    design matrix on ``data`` where the caller has built it already.
    """
    x = _cell_design(formula, data) if design is None else design
    labeled = data[outcome].notna().to_numpy()
    strata = data["stratum"].to_numpy() if "stratum" in data else np.zeros(len(data))
    sizes = data["_stratum_size"].to_numpy() if "_stratum_size" in data else np.full(len(data), float(len(data)))
    return _shortfall(x, labeled, strata, sizes, min_labels)


def _shortfall(
    x: pd.DataFrame, labeled: NDArray[np.bool_], strata: NDArray[Any], sizes: NDArray[np.float64], min_labels: int
) -> str:
    """:func:`identification_shortfall` on the cell's design, labeled mask, strata and stratum sizes."""
    needed, short_strata = 0, set[Any]()
    for column in x.columns:
        values = x[column].to_numpy()
        if column == "Intercept" or not np.isin(values, (0.0, 1.0)).all():
            continue
        for group in (values == 1.0, values == 0.0):
            deficit = min_labels - int((group & labeled).sum())
            if deficit <= 0 or not group.any():
                continue
            group_strata = pd.unique(strata[group])
            stratum_rows = pd.Series(sizes[group], index=strata[group]).groupby(level=0).first().sum()
            needed += int(np.ceil(deficit * stratum_rows / group.sum()))
            short_strata.update(str(s) for s in group_strata)
    if not needed and np.linalg.matrix_rank(x.to_numpy()[labeled]) < x.shape[1]:
        return "not yet estimable: the labeled rows do not separate every coefficient; label more of this cell"
    if not needed:
        return ""
    return _needs_sentence(needed, sorted(short_strata))


def _needs_sentence(labels: int, strata: Sequence[str]) -> str:
    """ "not yet estimable: needs about k more labels in <strata>" (three named, then a count)."""
    where = ", ".join(strata[:3]) + (f" and {len(strata) - 3} more strata" if len(strata) > 3 else "")
    return f"not yet estimable: needs about {labels} more label{'s' if labels != 1 else ''} in {where}"


#: The range of each estimand's terms where it is bounded: an image effect is a difference of
#: two proportions (of binary outcomes), so it lies in [-1, 1]. Its intervals are clipped to it.
ESTIMAND_RANGE: dict[str, tuple[float, float]] = {"image_effect": (-1.0, 1.0)}


def tidy_estimates(fits: Sequence[EstimandFit], alpha: float = 0.05) -> pd.DataFrame:
    """One row per estimand cell x term x estimator (:data:`TIDY_COLUMNS`).

    The interval is each estimator's ``conf_int`` (t with ``df`` for the design variance, normal
    for R's sandwich, statsmodels' t for the HC1 baselines), clipped to the estimand's range
    (:data:`ESTIMAND_RANGE`: the true value always lies in it, so clipping keeps the coverage and
    only removes values no cell can take); an estimator that could not run gives NaNs.
    ``status`` is ``not_estimable`` (and ``needs`` says what is missing) where the labels do not
    identify a label-based estimator's cell; ``bound_low``/``bound_high`` stay NaN
    here (:func:`analyse_study` fills them for accuracy).
    """
    records = []
    for fit in fits:
        for estimator, result in fit.results.items():
            terms = fit.terms or (None,)
            blocked = bool(fit.needs) and estimator in _LABEL_ESTIMATORS
            if result is not None:
                ci, df = result.conf_int(alpha), _degrees_of_freedom(result)
            for term in terms:
                ok = result is not None and term in result.params.index
                records.append(
                    {
                        "estimand": fit.estimand,
                        "outcome": fit.outcome,
                        "model": fit.model,
                        "benchmark": fit.benchmark,
                        "language": fit.language,
                        "term": term,
                        "estimator": estimator,
                        "estimate": result.params[term] if ok else np.nan,
                        "se": result.bse[term] if ok else np.nan,
                        "ci_low": ci.loc[term, 0] if ok else np.nan,
                        "ci_high": ci.loc[term, 1] if ok else np.nan,
                        "n": fit.n,
                        "n_labeled": 0 if estimator == "surrogate" else fit.n_labeled,
                        "df": df[term] if ok else np.nan,
                        "status": STATUS_NOT_ESTIMABLE if blocked or not ok else STATUS_OK,
                        "needs": "" if ok else (fit.needs or f"not estimable: {fit.note or 'no result'}"),
                        "bound_low": np.nan,
                        "bound_high": np.nan,
                    }
                )
    table = pd.DataFrame.from_records(records, columns=list(TIDY_COLUMNS))
    for estimand, (low, high) in ESTIMAND_RANGE.items():
        bounded = table["estimand"] == estimand
        table.loc[bounded, "ci_low"] = table.loc[bounded, "ci_low"].clip(lower=low)
        table.loc[bounded, "ci_high"] = table.loc[bounded, "ci_high"].clip(upper=high)
    return table


def _degrees_of_freedom(result: Any) -> pd.Series:
    """Per term: the t interval's df (design variance, statsmodels' residual df), inf if normal."""
    df = getattr(result, "df", None)  # DSLResults (None under R's sandwich) and SurveyResults
    if isinstance(df, pd.Series):
        return df
    return pd.Series(float(getattr(result, "df_resid", np.inf)), index=result.params.index)


def power_table(
    fits: Sequence[EstimandFit],
    *,
    label_factor: float = 2.0,
    target_halfwidth: float | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Predicted precision of every DSL estimate with more labels (:func:`stats.power_dsl`).

    Columns: the estimand keys, ``n_labeled``, ``se`` and ``halfwidth`` now,
    ``se_more``/``halfwidth_more`` with ``label_factor`` times the labels (same allocation), and
    ``labels_needed`` for ``target_halfwidth`` (labels in the cell; NaN if unreachable).
    """
    z = sps.norm.ppf(1.0 - alpha / 2.0)
    records = []
    for fit in fits:
        result = fit.results.get("dsl")
        if not isinstance(result, DSLResults):
            continue
        more = round(label_factor * result.n_labeled)
        predicted = power_dsl(result, [more])
        needed = (
            labels_for_halfwidth(result, target_halfwidth, alpha)
            if target_halfwidth is not None
            else pd.Series(np.nan, index=result.terms)
        )
        for term in fit.terms:
            records.append(
                {
                    "estimand": fit.estimand,
                    "outcome": fit.outcome,
                    "model": fit.model,
                    "benchmark": fit.benchmark,
                    "language": fit.language,
                    "term": term,
                    "n_labeled": result.n_labeled,
                    "se": result.bse[term],
                    "halfwidth": z * result.bse[term],
                    "labels_more": more,
                    "se_more": predicted.iloc[1][term],
                    "halfwidth_more": z * predicted.iloc[1][term],
                    "labels_needed": needed[term],
                }
            )
    return pd.DataFrame.from_records(records)


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

    For each outcome g-hat is cross-fitted once over the whole frame (:func:`study_predictions`)
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
    predicting = (
        _predicting(frame, outcomes, CrossFitSettings(cross_fit, sample_split, seed, learner), cache)
        if "dsl" in estimators
        else nullcontext(dict[str, Future[NDArray[np.float64]]]())
    )
    # The first outcome's cells are fitted while the second outcome is still being cross-fitted.
    with predicting as running:
        for outcome in outcomes:
            g_hat = running[outcome].result() if outcome in running else None
            designs[outcome] = _labeling(frame, frame[outcome].notna().to_numpy(), cache)[0]
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
                    estimators=[e for e in estimators if e in _LABEL_ESTIMATORS],
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
                "estimand": fit.estimand,
                "outcome": fit.outcome,
                "model": fit.model,
                "benchmark": fit.benchmark,
                "language": fit.language,
                "term": term,
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
        rows = (estimates["outcome"] == outcome) & estimates["estimator"].isin(_LABEL_ESTIMATORS)
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
