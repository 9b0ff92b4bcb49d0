"""Small numerical helpers shared by the estimators (sandwich pieces, cluster sums, PSD repair,
the first row of each group)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["cluster_sum", "first_rows", "nearest_psd_keep_diag", "outer_sum"]


def cluster_sum(
    moments: NDArray[np.float64] | sp.spmatrix, cluster_codes: NDArray[np.intp] | None
) -> NDArray[np.float64] | sp.spmatrix:
    """Sum moment rows within clusters (identity when ``cluster_codes`` is None).

    Why: the clustered sandwich meat is ``sum_c s_c s_c^T`` with ``s_c`` the sum of the moment
    contributions of cluster ``c`` (Liang and Zeger 1986); R's ``dsl`` computes exactly this.
    """
    if cluster_codes is None:
        return moments
    n_clusters = int(cluster_codes.max()) + 1
    indicator = sp.csr_matrix(
        (np.ones(len(cluster_codes)), (cluster_codes, np.arange(len(cluster_codes)))),
        shape=(n_clusters, len(cluster_codes)),
    )
    summed = indicator @ moments
    return summed


def outer_sum(rows: NDArray[np.float64] | sp.spmatrix) -> NDArray[np.float64]:
    """Return ``rows^T rows`` as a dense array (``rows`` may be sparse)."""
    product: Any = rows.T @ rows  # dense or sparse, as rows is
    return product.toarray() if sp.issparse(product) else np.asarray(product)


def nearest_psd_keep_diag(matrix: NDArray[np.float64], max_iter: int = 100) -> NDArray[np.float64]:
    """Nearest positive semi-definite matrix with the diagonal held fixed.

    Why: the element-wise median of per-split covariance matrices (DSL's split combination) need
    not be positive definite; R's ``dsl`` then calls ``Matrix::nearPD(keepDiag = TRUE)``. This is the
    alternating-projections algorithm of Higham (2002, IMA J. Numer. Anal. 22:329) that ``nearPD``
    implements: project onto the PSD cone (with Dykstra's correction), then restore the diagonal.
    The diagonal (the variances, i.e. the reported standard errors) is left exactly as it was.
    """
    target_diag = np.diag(matrix).copy()
    current = matrix.copy()
    correction = np.zeros_like(matrix)
    for _ in range(max_iter):
        shifted = current - correction
        values, vectors = np.linalg.eigh(shifted)
        projected = (vectors * np.clip(values, 0.0, None)) @ vectors.T
        correction = projected - shifted
        updated = projected.copy()
        np.fill_diagonal(updated, target_diag)
        converged = np.linalg.norm(updated - current) <= 1e-10 * max(float(np.linalg.norm(current)), 1.0)
        current = updated
        if converged:
            break
    return (current + current.T) / 2.0


def first_rows(codes: NDArray[np.intp], n_codes: int) -> NDArray[np.intp]:
    """The first row of each code ``0..n_codes-1`` in ``codes`` (every code must occur): writing
    the rows in reverse leaves each code's first one, in one pass without a sort."""
    first = np.empty(n_codes, dtype=np.intp)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return first
