"""Cross-fitted predictions g-hat of the predicted variable(s), as DSL needs them.

DSL (Egami, Hinck, Stewart and Wei 2023, "Using imperfect surrogates for downstream inference",
NeurIPS, Section 3) replaces the unknown labels on every row by ``g_hat(X) = E[Y | surrogate,
features, R = 1]``, fitted on the labeled rows. The bias-corrected moment stays unbiased whatever
``g_hat`` is, but its variance theory needs ``g_hat`` of row ``i`` to be fitted without row ``i``:
hence K-fold cross-fitting (Chernozhukov et al. 2018), repeated over ``sample_split`` random fold
draws whose results DSL combines by the median.

The predictions are a property of the data and the learner, not of any one regression: compute
them once with :func:`cross_fit_predictions` and pass them as ``g_hat=`` to every
:func:`stats.dsl` call on that data (or on row subsets of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple, cast, overload

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import clone
from threadpoolctl import ThreadpoolController

from stats._formula import as_list
from stats._linalg import first_rows
from stats.learners import ColumnInputs, Learner, default_learner

__all__ = [
    "CrossFitSettings",
    "DistinctInputs",
    "cross_fit_distinct",
    "cross_fit_predictions",
    "distinct_inputs",
    "distinct_rows",
    "fold_assignments",
    "fold_table",
    "learner_columns",
    "learner_inputs",
]


def learner_inputs(data: pd.DataFrame, columns: Sequence[str]) -> NDArray[np.float64]:
    """Numeric input matrix for the g-hat learner, like R's ``model.matrix(~ prediction + feature)``.

    Numeric and boolean columns are used as they are; string, object and categorical columns are
    one-hot encoded with one indicator per level (no reference level is dropped: the learners are
    regularised, so full coding costs nothing and keeps every level's effect shrunk alike).
    """
    encoded = _encode(data, columns)
    matrix = np.zeros((len(data), sum(width for _, _, width in encoded)))
    offset = 0
    for kind, values, width in encoded:
        if kind == "numeric":
            matrix[:, offset] = values
        else:
            matrix[np.arange(len(data)), offset + values] = 1.0
        offset += width
    return matrix


def learner_columns(data: pd.DataFrame, columns: Sequence[str]) -> ColumnInputs:
    """:func:`learner_inputs` kept by column (:class:`stats.learners.ColumnInputs`)."""
    encoded = _encode(data, columns)
    numeric, numeric_at, codes, offsets, widths = [], [], [], [], []
    offset = 0
    for kind, values, width in encoded:
        if kind == "numeric":
            numeric.append(values)
            numeric_at.append(offset)
        else:
            codes.append(values.astype(np.intp))
            offsets.append(offset)
            widths.append(width)
        offset += width
    table = np.column_stack(numeric) if numeric else np.zeros((len(data), 0))
    return ColumnInputs(table, numeric_at, codes, offsets, widths, offset)


def _encode(data: pd.DataFrame, columns: Sequence[str]) -> list[tuple[str, NDArray[Any], int]]:
    """Each column as (kind, values, matrix columns): numeric as itself, else integer codes."""
    if not columns:
        raise ValueError("the learner needs at least one input column (`prediction` or `feature`)")
    # Encode each column (numeric: itself; categorical: integer codes), then fill one
    # preallocated matrix: at 730k rows this avoids copying every block a second time.
    encoded: list[tuple[str, NDArray[Any], int]] = []
    for column in columns:
        values = data[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            numbers = values.to_numpy(dtype=np.float64)
            if np.isnan(numbers).any():
                raise ValueError(f"learner input column {column!r} has missing values")
            encoded.append(("numeric", numbers, 1))
        else:
            codes, levels = pd.factorize(values, sort=True)
            if (codes < 0).any():
                raise ValueError(f"learner input column {column!r} has missing values")
            encoded.append(("one-hot", codes, len(levels)))
    return encoded


def fold_assignments(n_units: int, cross_fit: int, rng: np.random.Generator) -> NDArray[np.intp]:
    """Random, balanced fold labels ``0..cross_fit-1`` for ``n_units`` units (rows or clusters).

    Balanced like R's ``dsl`` (``rep(1:K, each = floor(n/K))`` plus the remainder, shuffled).
    """
    if cross_fit < 2:
        raise ValueError("cross_fit must be at least 2")
    return rng.permutation(np.arange(n_units) % cross_fit)


def fold_table(n_units: int, cross_fit: int, sample_split: int, rng: np.random.Generator) -> NDArray[np.int8]:
    """The folds of :func:`cross_fit_predictions`' ``sample_split`` draws, shape (sample_split, n_units).

    Drawn from ``rng`` exactly as :func:`cross_fit_predictions` draws them itself, so passing the
    table as ``folds=`` gives the same predictions; a caller can draw the folds of several
    cross-fits in order up front (and keep them: they depend on the seed and sizes only).
    """
    if cross_fit > 127:
        raise ValueError("cross_fit must be at most 127")
    if cross_fit < 2:
        raise ValueError("cross_fit must be at least 2")
    # What fold_assignments draws, row by row, shuffled in place as int8: the shuffle's draws do
    # not depend on the dtype, so the table is the same, in a third less time at 775k units.
    balanced = (np.arange(n_units) % cross_fit).astype(np.int8)
    table = np.empty((sample_split, n_units), dtype=np.int8)
    for row in table:
        row[:] = balanced
        rng.shuffle(row)
    return table


def _fit_predict(
    learner: Learner,
    x_train: NDArray[np.float64],
    y_train: NDArray[np.float64],
    x_test: NDArray[np.float64] | ColumnInputs,
) -> NDArray[np.float64]:
    """Fit a clone of ``learner`` and predict E[y | x]: class-1 probability for classifiers.

    ``x_test`` may be :class:`ColumnInputs` where the learner predicts from them (``predict_columns``).
    A fold whose training folds hold no label (the first labels of a study: all of them can fall
    in one fold) predicts 0: DSL stays unbiased for any g-hat that does not see the row's own
    label, its variance then rests on the labels alone, and the cells are not yet estimable
    anyway with so few labels. (R's ``dsl`` stops with an error there.)"""
    observed = np.unique(y_train)
    if observed.size == 0:
        return np.zeros(len(x_test))
    if observed.size == 1:
        # A training fold with a single label value (possible with few labels) has nothing to
        # learn from, and classifiers refuse to fit: predict that value.
        return np.full(len(x_test), float(observed[0]))
    fitted = clone(learner).fit(x_train, y_train)
    if isinstance(x_test, ColumnInputs):
        return np.asarray(fitted.predict_columns(x_test), dtype=np.float64)
    if hasattr(fitted, "predict_proba"):
        classes = list(fitted.classes_)
        if len(classes) != 2:
            raise ValueError("a classifier learner needs a binary predicted variable")
        return fitted.predict_proba(x_test)[:, classes.index(max(classes))]
    return np.asarray(fitted.predict(x_test), dtype=np.float64)


@overload
def cross_fit_predictions(
    data: pd.DataFrame,
    predicted_var: str,
    prediction: str | Sequence[str] | None = None,
    feature: str | Sequence[str] | None = None,
    *,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    learner: Learner | None = None,
    cluster: str | None = None,
    folds: NDArray[np.integer] | None = None,
) -> NDArray[np.float64]: ...


@overload
def cross_fit_predictions(
    data: pd.DataFrame,
    predicted_var: Sequence[str],
    prediction: str | Sequence[str] | None = None,
    feature: str | Sequence[str] | None = None,
    *,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    learner: Learner | None = None,
    cluster: str | None = None,
    folds: NDArray[np.integer] | None = None,
) -> dict[str, NDArray[np.float64]]: ...


def cross_fit_predictions(
    data: pd.DataFrame,
    predicted_var: str | Sequence[str],
    prediction: str | Sequence[str] | None = None,
    feature: str | Sequence[str] | None = None,
    *,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    learner: Learner | None = None,
    cluster: str | None = None,
    folds: NDArray[np.integer] | None = None,
) -> NDArray[np.float64] | dict[str, NDArray[np.float64]]:
    """Cross-fitted g-hat for every row of ``data``, for each of ``sample_split`` fold draws.

    For each split, units (rows, or clusters when ``cluster`` is given, so that a cluster is never
    on both sides) are dealt at random into ``cross_fit`` folds; for each fold the learner is
    trained on the *labeled* rows of the other folds (target: the predicted variable; inputs: the
    ``prediction`` column(s) and the ``feature`` columns, see :func:`learner_inputs`) and predicts
    *every* row of the held-out fold. Rows are labeled where all predicted variables are non-NA.

    Parameters
    ----------
    data : DataFrame
        All rows, labeled and unlabeled; input columns must have no missing values.
    predicted_var : str or list of str
        Column(s) with the gold labels (NA where unlabeled).
    prediction, feature : str or list of str, optional
        Learner inputs: the surrogate prediction(s) and further covariates.
    cross_fit, sample_split : int
        Number of folds and of independent fold draws.
    seed : int or numpy.random.Generator
        Seeds the fold draws (a fresh Generator from an int; nothing global is touched).
    learner : object with ``fit(X, y)`` and ``predict(X)`` or ``predict_proba(X)``, optional
        Cloned for every fit; default :func:`stats.learners.default_learner`.
    cluster : str, optional
        Column whose groups are kept within one fold.
    folds : ndarray (sample_split, units), optional
        The fold of every unit in each draw (:func:`fold_table`), instead of drawing from ``seed``.

    Returns
    -------
    ndarray of shape (sample_split, n_rows), or dict of them keyed by predicted variable
        An array when ``predicted_var`` is a single name, else a dict; both are accepted as
        ``g_hat=`` by :func:`stats.dsl`.
    """
    targets = [predicted_var] if isinstance(predicted_var, str) else list(predicted_var)
    inputs = [c for c in dict.fromkeys(as_list(prediction) + as_list(feature)) if c not in targets]
    if not inputs:
        raise ValueError("the learner needs at least one input column (`prediction` or `feature`)")
    unit = None if cluster is None else pd.factorize(data[cluster], sort=True)[0]
    out = cross_fit_distinct(
        distinct_inputs(data, inputs),
        data[targets].to_numpy(dtype=np.float64),
        cross_fit=cross_fit,
        sample_split=sample_split,
        seed=seed,
        learner=learner,
        unit=unit,
        folds=folds,
    )
    if isinstance(predicted_var, str):
        return out[0]
    return {name: out[t] for t, name in enumerate(targets)}


@dataclass(frozen=True)
class CrossFitSettings:
    """How g-hat is cross-fitted, as one value: ``cross_fit`` folds, ``sample_split`` fold draws,
    the ``seed`` of the draws and the ``learner`` (None: :func:`stats.learners.default_learner`).

    The public functions keep these four as keyword arguments; inside they travel together.
    """

    cross_fit: int = 5
    sample_split: int = 10
    seed: int | np.random.Generator = 1234
    learner: Learner | None = None

    def arguments(self) -> dict[str, Any]:
        """The four as keyword arguments (of :func:`cross_fit_predictions` and the estimand functions)."""
        return dict(cross_fit=self.cross_fit, sample_split=self.sample_split, seed=self.seed, learner=self.learner)


class DistinctInputs(NamedTuple):
    """The learner input matrix of the distinct input rows (``x``), and each row's index into it
    (``inverse``): what :func:`cross_fit_distinct` fits and predicts on. It depends on the input
    columns alone, so a caller whose labels change but whose inputs do not can keep it.

    ``x`` is None where ``columns`` holds the matrix: :func:`cross_fit_distinct` then takes the
    training rows from the columns, and the whole dense matrix (rows x 40-odd floats: 1 GB at
    3M distinct rows) is built only for a learner that cannot predict from the columns."""

    x: NDArray[np.float64] | None
    inverse: NDArray[np.intp]
    #: The same matrix by column (:class:`stats.learners.ColumnInputs`), for a learner that
    #: predicts from them; None where the first column (the surrogate) is not numeric.
    columns: ColumnInputs | None = None

    @property
    def n_distinct(self) -> int:
        """Number of distinct input rows."""
        return len(self.x) if self.x is not None else len(cast(ColumnInputs, self.columns))

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        """The inputs as plain arrays (for a file without pickle); :meth:`from_arrays` inverts it."""
        arrays: dict[str, NDArray[Any]] = {"inverse": self.inverse}
        if self.x is not None:
            arrays["x"] = self.x
        if self.columns is not None:
            columns = self.columns
            arrays |= {
                "numeric": columns.numeric,
                "numeric_at": np.asarray(columns.numeric_at, dtype=np.int64),
                "codes": np.stack(columns.codes) if columns.codes else np.zeros((0, len(columns)), dtype=np.intp),
                "offsets": np.asarray(columns.offsets, dtype=np.int64),
                "widths": np.asarray(columns.widths, dtype=np.int64),
                "width": np.asarray(columns.width, dtype=np.int64),
            }
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray[Any]]) -> DistinctInputs:
        """The inputs :meth:`to_arrays` gave."""
        columns = None
        if "numeric" in arrays:
            columns = ColumnInputs(
                np.asarray(arrays["numeric"], dtype=np.float64),
                [int(j) for j in arrays["numeric_at"]],
                [np.asarray(codes, dtype=np.intp) for codes in arrays["codes"]],
                [int(offset) for offset in arrays["offsets"]],
                [int(width) for width in arrays["widths"]],
                int(arrays["width"]),
            )
        x = np.asarray(arrays["x"], dtype=np.float64) if "x" in arrays else None
        return cls(x, np.asarray(arrays["inverse"], dtype=np.intp), columns)

    def dense(self) -> NDArray[np.float64]:
        """The learner input matrix of the distinct rows."""
        if self.x is not None:
            return self.x
        return cast(ColumnInputs, self.columns).matrix(np.arange(self.n_distinct))


def distinct_inputs(data: pd.DataFrame, columns: Sequence[str]) -> DistinctInputs:
    """:class:`DistinctInputs` of ``columns`` (:func:`distinct_rows`, then :func:`learner_inputs`)."""
    if not columns:
        raise ValueError("the learner needs at least one input column (`prediction` or `feature`)")
    first, inverse = distinct_rows(data, columns)
    rows = data.iloc[first]
    by_column = learner_columns(rows, columns)
    if 0 in by_column.numeric_at:
        return DistinctInputs(None, inverse, by_column)
    return DistinctInputs(learner_inputs(rows, columns), inverse, None)


def cross_fit_distinct(
    inputs: DistinctInputs,
    labels: NDArray[np.float64],
    *,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    learner: Learner | None = None,
    unit: NDArray[np.intp] | None = None,
    folds: NDArray[np.integer] | None = None,
) -> NDArray[np.float64]:
    """The cross-fitting of :func:`cross_fit_predictions` on prepared inputs: g-hat of each column
    of ``labels`` (rows x targets, NaN where unlabeled), shape (targets, sample_split, rows).

    ``unit`` gives each row's cluster code (0..C-1) when clusters are dealt into folds whole.
    """
    # Rows with the same inputs get the same prediction from a fitted learner, and at the study's
    # scale few inputs are distinct (repeated short answers share language-ID output and length):
    # fit on and predict only the distinct rows, then broadcast (``inverse``).
    inverse, by_column = inputs.inverse, inputs.columns
    labels = np.asarray(labels, dtype=np.float64).reshape(len(inverse), -1)
    n_targets = labels.shape[1]
    labeled = ~np.isnan(labels).any(axis=1)
    rng = np.random.default_rng(seed)
    learner = default_learner() if learner is None else learner
    # A learner that predicts from the columns predicts the distinct rows a fold needs from
    # them (all of them when most are needed): cheaper than copying rows of the dense matrix.
    by_column = by_column if hasattr(learner, "predict_columns") else None
    x = inputs.dense() if by_column is None else None
    n_units = len(inverse) if unit is None else int(unit.max()) + 1
    if folds is not None and np.shape(folds) != (sample_split, n_units):
        raise ValueError(f"folds must have shape (sample_split, units) = ({sample_split}, {n_units})")
    n_distinct = inputs.n_distinct

    labeled_rows = np.flatnonzero(labeled)
    out = np.empty((n_targets, sample_split, len(inverse)))
    table = np.zeros((n_targets, cross_fit * n_distinct))
    # Small dense fits (about 1000 x 100) run several times faster on one BLAS thread than on
    # several, whose start-up dominates; the limit is scoped to this loop.
    with _blas_controller().limit(limits=1, user_api="blas"):
        for split in range(sample_split):
            fold = fold_assignments(n_units, cross_fit, rng) if folds is None else folds[split].astype(np.intp)
            fold = fold if unit is None else fold[unit]
            # Row i needs the prediction of fold fold[i]'s learner for its distinct input row.
            cell = fold * n_distinct + inverse
            needed = np.zeros(cross_fit * n_distinct, dtype=bool)
            needed[cell] = True
            needed_by_fold = needed.reshape(cross_fit, n_distinct)
            for k in range(cross_fit):
                train = labeled_rows[fold[labeled_rows] != k]
                predict: NDArray[np.intp] | slice = slice(k * n_distinct, (k + 1) * n_distinct)
                x_train: NDArray[np.float64]
                x_test: NDArray[np.float64] | ColumnInputs
                if by_column is not None:
                    x_train, x_test = by_column.matrix(inverse[train]), by_column  # the dense rows, exactly
                else:
                    x_train, x_test = cast(NDArray[np.float64], x)[inverse[train]], cast(NDArray[np.float64], x)
                if 2 * np.count_nonzero(needed_by_fold[k]) <= n_distinct:  # else all cost less than picking most
                    rows = np.flatnonzero(needed_by_fold[k])
                    x_test = x_test.some_rows(rows) if isinstance(x_test, ColumnInputs) else x_test[rows]
                    predict = k * n_distinct + rows
                for t in range(n_targets):
                    table[t, predict] = _fit_predict(learner, x_train, labels[train, t], x_test)
            for t in range(n_targets):
                np.take(table[t], cell, out=out[t, split])  # several times faster than table[t, cell]
    return out


def distinct_rows(data: pd.DataFrame, columns: Sequence[str]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Distinct combinations of ``columns``: the first row of each and every row's combination.

    Returns ``first`` (row positions, one per distinct combination, in order of appearance) and
    ``inverse`` (per row, the index into ``first`` of its combination), so that
    ``data.iloc[first].iloc[inverse]`` equals ``data[columns]``. Missing values count as a value.
    Linear in rows: each column is factorized and the codes are combined into one integer key.
    """
    key = np.zeros(len(data), dtype=np.int64)
    size = 1
    for column in columns:
        codes, uniques = pd.factorize(data[column], use_na_sentinel=True)
        width = len(uniques) + 1  # code 0 for a missing value
        if size * width >= 2**62:  # keep the mixed-radix key within int64: renumber it first
            key, kept = pd.factorize(key)
            size = len(kept)
        key = key * width + (codes + 1)
        size *= width
    inverse, kept = pd.factorize(key)
    return first_rows(inverse, len(kept)), inverse.astype(np.intp)


@cache
def _blas_controller() -> ThreadpoolController:
    """Inspecting the loaded thread pools takes milliseconds: do it once."""
    return ThreadpoolController()
