"""Learners for DSL's g-hat, the prediction of the gold label from the surrogate and features.

Any sklearn-style object with ``fit(X, y)`` and ``predict(X)`` (or ``predict_proba(X)``) works;
:func:`default_learner` returns :class:`BinnedInteractionLearner`, chosen by measurement (see
docs/stats.md, "Choice of learner"): on simulated study data it matched gradient boosting and
random forests in log-loss and in the resulting DSL standard errors while fitting and predicting
one to two orders of magnitude faster, which is what 730k rows x 5 folds x 10 splits needs.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge

from stats._linalg import first_rows

__all__ = ["BinnedInteractionLearner", "ColumnInputs", "Learner", "default_learner"]


class Learner(Protocol):
    """Anything sklearn-like: ``fit(X, y)`` returning the fitted learner, and ``predict(X)``."""

    def fit(self, X: Any, y: Any) -> Any: ...

    def predict(self, X: Any) -> Any: ...


class ColumnInputs:
    """A learner input matrix (:func:`stats.crossfit.learner_inputs`) kept by column: the numeric
    columns as they are, each one-hot block as one integer code per row.

    The matrix of the study's distinct input rows is mostly one-hot indicators (language, model,
    benchmark), so a prediction from the codes reads a tenth of the memory a product with the
    dense matrix does, and needs no copy of the rows (issue 10). ``matrix(rows)`` gives the dense
    rows, equal to the learner-input matrix's.

    Parameters
    ----------
    numeric : ndarray (n, p)
        The numeric columns, in order.
    numeric_at : sequence of int
        The matrix column of each numeric column.
    codes : sequence of ndarray (n,)
        Per one-hot block, each row's level (0..width-1).
    offsets, widths : sequence of int
        Per one-hot block, its first matrix column and its number of columns.
    width : int
        Columns of the matrix.
    """

    def __init__(
        self,
        numeric: NDArray[np.float64],
        numeric_at: list[int],
        codes: list[NDArray[np.intp]],
        offsets: list[int],
        widths: list[int],
        width: int,
    ) -> None:
        self.numeric, self.numeric_at = numeric, numeric_at
        self.codes, self.offsets, self.widths, self.width = codes, offsets, widths, width
        # The one-hot blocks together take few combinations (language x model x benchmark):
        # each row's combination, and each combination's matrix columns set to one.
        key = np.zeros(len(numeric), dtype=np.int64)
        for block, block_width in zip(codes, widths, strict=True):
            key = key * block_width + block
        self._combination, first = _first_of_each(key)
        self._ones = [offset + block[first] for block, offset in zip(codes, offsets, strict=True)]
        # Per binned numeric column (on first use): its sorted distinct values and every row's
        # index into them, so that a bin look-up searches the distinct values, not every row.
        self._distinct: dict[int, tuple[NDArray[np.float64], NDArray[np.intp]]] = {}

    def __len__(self) -> int:
        return len(self.numeric)

    def matrix(self, rows: NDArray[np.intp]) -> NDArray[np.float64]:
        """The dense input matrix of ``rows``."""
        out = np.zeros((len(rows), self.width))
        out[:, self.numeric_at] = self.numeric[rows]
        for codes, offset in zip(self.codes, self.offsets, strict=True):
            out[np.arange(len(rows)), offset + codes[rows]] = 1.0
        return out

    def dot(self, weights: NDArray[np.float64]) -> NDArray[np.float64]:
        """The matrix times ``weights`` (width, m), from the columns."""
        out = self.numeric @ weights[self.numeric_at]
        if self._ones:
            per_combination = weights[self._ones[0]].copy()
            for ones in self._ones[1:]:
                per_combination += weights[ones]
            out += per_combination[self._combination]
        return np.asarray(out, dtype=np.float64)

    def column(self, j: int) -> NDArray[np.float64]:
        """Matrix column ``j``, which must be a numeric one."""
        return self.numeric[:, self.numeric_at.index(j)]

    def bins(self, j: int, edges: NDArray[np.float64]) -> NDArray[np.intp]:
        """``np.searchsorted(edges, column j, side="right")`` (a numeric column), via its distinct values."""
        if j not in self._distinct:
            self._distinct[j] = np.unique(self.column(j), return_inverse=True)
        values, inverse = self._distinct[j]
        return np.searchsorted(edges, values, side="right")[inverse]

    def some_rows(self, rows: NDArray[np.intp]) -> ColumnInputs:
        """The inputs of ``rows`` only, as :meth:`BinnedInteractionLearner.predict_columns` reads
        them (``width``, ``dot``, ``column``, ``bins``): the same predictions as of every row
        taken at ``rows``, at the cost of these rows. Where nearly every input row is distinct
        (continuous confidence, as in the simulated study) each cross-fitting fold needs a fifth."""
        return _SomeRows(self, rows)


class _SomeRows(ColumnInputs):
    """:meth:`ColumnInputs.some_rows`: the numeric columns gathered, the one-hot combinations shared."""

    def __init__(self, inputs: ColumnInputs, rows: NDArray[np.intp]) -> None:
        self.width, self.numeric_at = inputs.width, inputs.numeric_at
        self.numeric = np.take(inputs.numeric, rows, axis=0)  # gathered once (5x faster than numeric[rows])
        self._ones = inputs._ones
        self._combination = np.take(inputs._combination, rows)

    def bins(self, j: int, edges: NDArray[np.float64]) -> NDArray[np.intp]:
        """``searchsorted(edges, column j, side="right")``: for sorted edges, the number of edges
        at or below each value, counted by comparisons (a third of the time for the learner's
        seven edges; learner inputs have no NaN, where the two would differ)."""
        values = np.ascontiguousarray(self.column(j))
        if len(edges) == 0 or np.isnan(edges).any() or np.isnan(values).any():
            return np.searchsorted(edges, values, side="right")
        out = (values >= edges[0]).astype(np.intp)
        for edge in edges[1:]:
            out += values >= edge
        return out


def _first_of_each(key: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Each row's index among the distinct keys (in order of appearance), and each key's first row."""
    distinct, combination = np.unique(key, return_inverse=True)
    return combination.astype(np.intp), first_rows(combination, len(distinct))


class BinnedInteractionLearner(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no types
    """Penalised regression of the gold label on the surrogate interacted with binned features.

    Why this form: a language-ID surrogate's error rates depend on the answer's language, length
    and the classifier's own confidence, and differ between its two verdicts. The learner therefore
    models ``E[gold | x] = link^-1(a(x) + s * b(x))`` with ``s`` the surrogate (column 0 of ``X``, as
    :func:`stats.cross_fit_predictions` puts the ``prediction`` column first) and ``a``, ``b`` linear in
    the features, where every input with more than two distinct values enters both linearly and as
    ``n_bins`` quantile-bin indicators (a step function catches non-linear shapes such as a
    confidence score that saturates near 1). Binary targets use L2-penalised logistic regression
    (Newton-Cholesky: exact and fast for ~100 columns), other targets ridge regression.

    Parameters
    ----------
    C : float
        Inverse penalty strength (``alpha = 1 / C`` for ridge), on standardised inputs.
    n_bins : int
        Quantile bins per many-valued input, with edges from the training rows.
    """

    def __init__(self, C: float = 0.3, n_bins: int = 8) -> None:
        self.C = C
        self.n_bins = n_bins

    def fit(self, X: NDArray[np.float64], y: NDArray[np.float64]) -> BinnedInteractionLearner:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.center_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.edges_ = [
            np.unique(np.quantile(X[:, j], np.linspace(0, 1, self.n_bins + 1)[1:-1]))
            if np.unique(X[:, j]).size > 2
            else None
            for j in range(X.shape[1])
        ]
        design = self._design(X)
        self.binary_ = bool(np.isin(y, (0.0, 1.0)).all())
        if self.binary_:
            self.model_ = LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=200).fit(design, y)
            coef, intercept = self.model_.coef_[0], self.model_.intercept_[0]
        else:
            self.model_ = Ridge(alpha=1.0 / self.C).fit(design, y)
            coef, intercept = self.model_.coef_, self.model_.intercept_
        self.intercept_ = float(intercept)
        half = design.shape[1] // 2
        self.main_coef_, self.surrogate_coef_ = coef[:half], coef[half:]
        return self

    def predict(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """``E[y | X]``: a probability for binary targets.

        Computed as one matrix product plus bin look-ups, with the standardisation folded into the
        coefficients, instead of materialising the design: predicting hundreds of thousands of
        rows then costs little memory and time.
        """
        X = np.asarray(X, dtype=np.float64)
        n_inputs = X.shape[1]
        slopes = np.column_stack([self.main_coef_[:n_inputs], self.surrogate_coef_[:n_inputs]]) / self.scale_[:, None]
        linear = X @ slopes - self.center_ @ slopes
        main, interaction = linear[:, 0], linear[:, 1]
        offset = n_inputs
        for j, edges in enumerate(self.edges_):
            if edges is not None:
                bins = np.searchsorted(edges, X[:, j], side="right")
                main += self.main_coef_[offset : offset + len(edges) + 1][bins]
                interaction += self.surrogate_coef_[offset : offset + len(edges) + 1][bins]
                offset += len(edges) + 1
        surrogate = (X[:, 0] - self.center_[0]) / self.scale_[0]
        eta = self.intercept_ + main + surrogate * interaction
        return 1.0 / (1.0 + np.exp(-eta)) if self.binary_ else eta

    def predict_columns(self, inputs: ColumnInputs) -> NDArray[np.float64]:
        """:meth:`predict` of ``inputs.matrix(all rows)``, computed from the columns (see
        :class:`ColumnInputs`): the same numbers up to the order of a sum's terms."""
        n_inputs = inputs.width
        slopes = np.column_stack([self.main_coef_[:n_inputs], self.surrogate_coef_[:n_inputs]]) / self.scale_[:, None]
        linear = inputs.dot(slopes) - self.center_ @ slopes
        main, interaction = linear[:, 0], linear[:, 1]
        offset = n_inputs
        for j, edges in enumerate(self.edges_):
            if edges is not None:
                bins = inputs.bins(j, edges)
                main += self.main_coef_[offset : offset + len(edges) + 1][bins]
                interaction += self.surrogate_coef_[offset : offset + len(edges) + 1][bins]
                offset += len(edges) + 1
        surrogate = (inputs.column(0) - self.center_[0]) / self.scale_[0]
        eta = self.intercept_ + main + surrogate * interaction
        return 1.0 / (1.0 + np.exp(-eta)) if self.binary_ else eta

    def _design(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        standardised = (X - self.center_) / self.scale_
        blocks = [standardised]
        for j, edges in enumerate(self.edges_):
            if edges is not None:
                blocks.append(np.eye(len(edges) + 1)[np.searchsorted(edges, X[:, j], side="right")])
        main = np.hstack(blocks)
        return np.hstack([main, main * standardised[:, :1]])


def default_learner() -> BinnedInteractionLearner:
    """The learner :func:`stats.dsl` and :func:`stats.cross_fit_predictions` use by default."""
    return BinnedInteractionLearner()
