"""The cells of an estimand and their fits: the loop behind every estimand of :mod:`stats.estimands`.

An estimand is one regression (``formula``) fitted in every cell of the covered population (a
model x benchmark cell, a target language): :func:`fit_cells` groups the rows into cells, builds
each cell's regression rows and design matrix once (:class:`_Cell`; kept in an
:class:`~stats.cache.AnalysisCache`, since none of it depends on the labels), checks that the
labels identify the regression (:func:`identification_shortfall`, :data:`MIN_LABELS`) and fits
it by each estimator of the registry (:data:`ESTIMATORS`), giving one :class:`EstimandFit` per
cell. What the cells are and which columns feed them is the caller's: this module knows no
column of the study's beyond ``stratum``, ``sample_prob`` and the ones it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import patsy
from numpy.typing import NDArray

from stats._formula import formula_names
from stats.baselines import labeled_ols, labeled_survey_design, labeled_survey_estimate, surrogate_ols_design
from stats.cache import AnalysisCache, cached
from stats.design import InterimDesign, interim_design, interim_sample_prob, stratum_sizes
from stats.dsl import _EVAL_ENV, VARIANCES, dsl
from stats.dsl_design import CellDesign, dsl_design_estimate, dsl_design_matrix, dsl_design_sums, predicted_variance
from stats.dsl_results import DSLResults

__all__ = [
    "ESTIMATORS",
    "LABEL_ESTIMATORS",
    "MIN_LABELS",
    "EstimandFit",
    "fit_cells",
    "identification_shortfall",
    "labeling",
]

#: Fewest gold labels each arm / level of a regressor needs before a cell is estimated from
#: labels (measured: docs/stats.md, "Identification").
MIN_LABELS = 2
#: Estimators that rest on the gold labels (the identification check applies to them).
LABEL_ESTIMATORS = ("dsl", "labeled")


def labeling(
    frame: pd.DataFrame, labeled: NDArray[np.bool_], cache: AnalysisCache | None
) -> tuple[InterimDesign, NDArray[np.float64]]:
    """:func:`stats.estimands.outcome_design` and :func:`stats.design.interim_sample_prob` for the
    rows ``labeled``; with a cache kept for these labels (the estimands of one outcome share them)."""

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

    def keys(self, term: str | None) -> dict[str, Any]:
        """The columns that name a row of a table of this fit, for ``term`` (first in every table)."""
        return {
            "estimand": self.estimand,
            "outcome": self.outcome,
            "model": self.model,
            "benchmark": self.benchmark,
            "language": self.language,
            "term": term,
        }


def fit_cells(
    frame: pd.DataFrame,
    outcome: str,
    formula: str,
    cells: list[str],
    estimand: str,
    estimators: Sequence[str],
    g_hat: NDArray[np.float64] | None,
    predict: Callable[[], NDArray[np.float64]],
    *,
    surrogate: str,
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    prepare_columns: Sequence[str] = (),
    restrict: NDArray[np.intp] | None = None,
    report_terms: tuple[str, ...] | None = None,
    variance: str = "design",
    min_labels: int = MIN_LABELS,
    point_only: bool = False,
    cache: AnalysisCache | None = None,
    cells_key: Hashable = None,
) -> list[EstimandFit]:
    """Fit one formula by each estimator in every cell of the covered population.

    ``predict`` computes g-hat of ``outcome`` for the frame where DSL is asked for and ``g_hat`` is
    not given; ``surrogate`` is the column the surrogate-only estimator regresses. ``prepare`` turns
    a cell's rows into the regression data (the interaction regression's
    :func:`stats.estimands.ablation_frame`) from the columns ``prepare_columns`` (a row missing one
    of them is in no cell); ``restrict`` limits the rows (positions in ``frame``);
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
    if point_only and (variance != "design" or not set(estimators) <= set(LABEL_ESTIMATORS)):
        raise ValueError("point_only is for the label-based estimators under the design variance")
    if "dsl" in estimators and g_hat is None:
        g_hat = predict()
    dsl_g_hat = cast(NDArray[np.float64], g_hat)  # set whenever "dsl" is asked for, and only dsl reads it
    gold_values = frame[outcome].to_numpy(dtype=np.float64)
    labeled = ~np.isnan(gold_values)
    design, pi = labeling(frame, labeled, cache)
    rhs = formula.split("~", 1)[1].strip()
    key = ("cells", outcome, rhs, tuple(cells), cells_key if cache is not None else None)
    structure: _Cells = cached(
        cache,
        (*key, tuple(design.covered_strata)),
        lambda: _cell_structure(frame, outcome, formula, cells, design, surrogate, prepare, prepare_columns, restrict),
    )
    cell_strata: dict[tuple[Any, ...], list[Any]] = cached(
        cache, (*key, "strata"), lambda: _cell_strata(frame, cells, restrict, prepare_columns)
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
            if needs and estimator in LABEL_ESTIMATORS:
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
    sums (:func:`stats.dsl_design.dsl_design_sums`) or, where the design has a missing value, from its rows."""
    cell, position = fit.cell, fit.cell.position
    if fit.variance == "sandwich":
        return dsl("lm", fit.formula, fit.data, fit.outcome, sample_prob=fit.pi, g_hat=fit.g_hat[:, position])
    if cell.design is not None:
        patterns = slice(cell.offset, cell.offset + len(cell.design.counts))
        sums = fit.cells.pattern_sums(fit.g_hat)[:, patterns]
        variance_sums = sums if fit.point_only else fit.cells.pattern_sums(fit.g_hat, of_variance=True)[:, patterns]
        labeled_g = fit.g_hat[:, position[~np.isnan(fit.gold)]]
        result = dsl_design_sums(
            fit.formula,
            cell.design,
            fit.gold,
            labeled_g,
            sums,
            variance_sums,
            *fit.design_args,
            point_only=fit.point_only,
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
#: The estimators, by name, in the order every table lists them.
ESTIMATORS: tuple[str, ...] = tuple(_FITS)


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
    surrogate: str,
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None,
    prepare_columns: Sequence[str],
    restrict: NDArray[np.intp] | None,
) -> list[_Cell]:
    """The cells of the covered rows (of ``restrict``), each with its regression rows and design."""
    covered = design.covered(frame["stratum"])
    positions = np.flatnonzero(covered) if restrict is None else restrict[covered[restrict]]
    # Only the columns the formula and estimators use go to them: smaller copies, faster patsy.
    columns = set(formula_names(formula, frame.columns)) | {surrogate, "stratum"}
    columns.discard(outcome)
    columns |= set(prepare_columns)
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
        structure.append(_Cell(key, labels, data, x, problems, surrogate))
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

    def pattern_sums(self, g_hat: NDArray[np.float64], of_variance: bool = False) -> NDArray[np.float64]:
        """Per split and pattern (all cells'): the sum of g-hat (or with ``of_variance`` of the
        variance ``g (1 - g)`` it predicts, g clipped to [0, 1]) over its rows; kept for the same
        g-hat array (the bounds' refits reuse the estimates' g-hat)."""
        kept = self._sums.get(of_variance)
        if kept is not None and kept[0] is g_hat:
            return kept[1]
        sums = np.empty((len(g_hat), self._n_patterns))
        for split, values in enumerate(g_hat):
            values = values if self._positions is None else values[self._positions]
            if of_variance:
                values = predicted_variance(values)
            sums[split] = np.bincount(self._patterns, weights=values, minlength=self._n_patterns)[: self._n_patterns]
        self._sums[of_variance] = (g_hat, sums)
        return sums


@dataclass(frozen=True)
class _Coefficients:
    """A point estimate without a variance (``point_only`` fits)."""

    params: pd.Series


def _as_point(result: DSLResults | pd.Series) -> Any:
    """A :func:`stats.dsl_design.dsl_design_sums` result as :func:`fit_cells` reports it."""
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
    frame: pd.DataFrame, cells: list[str], restrict: NDArray[np.intp] | None, required: Sequence[str]
) -> dict[tuple[Any, ...], list[Any]]:
    """Cell key -> the strata of its rows (of ``restrict``; of those with every ``required`` column
    set), whether covered or not: a cell's sampled strata without labels are among them."""
    rows = frame.iloc[restrict] if restrict is not None else frame
    if required:
        rows = rows.loc[rows[list(required)].notna().all(axis=1)]
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
