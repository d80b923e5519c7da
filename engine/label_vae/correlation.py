"""Rank correlation matrices made usable for sampling: Kendall tau -> Pearson -> PD -> Cholesky.

A Kendall matrix estimated from few samples (e.g. 32 slices from 16 latent dimensions) need not
be positive definite, and a constant column gives NaN. Both are repaired here rather than
letting ``np.linalg.cholesky`` fail, which the public code of the seed paper does not guard.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)

# Smallest eigenvalue kept when repairing; relative to the unit diagonal of a correlation matrix.
MIN_EIGENVALUE = 1e-6
# Above this many samples the O(n^2)-memory sign-matrix formula is replaced by scipy per pair.
_DENSE_KENDALL_MAX_SAMPLES = 256


class RepairedCorrelation(NamedTuple):
    """A positive-definite correlation matrix and whether the input had to be changed."""

    matrix: np.ndarray
    was_repaired: bool


def kendall_matrix(samples: np.ndarray) -> np.ndarray:
    """Kendall tau-b between the columns of ``samples`` (n_samples x n_vars) -> n_vars x n_vars.

    Constant columns (undefined tau) give 0 off the diagonal; the diagonal is always 1.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2D array (samples x variables), got shape {x.shape}")
    n, p = x.shape
    if n < 2:
        return np.eye(p)
    if n <= _DENSE_KENDALL_MAX_SAMPLES:
        tau = _kendall_dense(x)
    else:
        from scipy import stats  # 0.3 s to import; only large samples need it

        tau = np.eye(p)
        for i in range(p):
            for j in range(i + 1, p):
                value = stats.kendalltau(x[:, i], x[:, j]).statistic
                tau[i, j] = tau[j, i] = value
    tau = np.where(np.isfinite(tau), tau, 0.0)
    np.fill_diagonal(tau, 1.0)
    return np.clip(tau, -1.0, 1.0)


def _kendall_dense(x: np.ndarray) -> np.ndarray:
    # tau-b = sum_{k<l} s_i s_j / sqrt(sum |s_i| * sum |s_j|) with s the sign of pair differences;
    # |s| counts the pairs not tied in that variable, which gives the tie correction of tau-b.
    signs = np.sign(x[:, None, :] - x[None, :, :])  # n x n x p
    upper = np.triu_indices(x.shape[0], k=1)
    s = signs[upper]  # pairs x p
    concordance = s.T @ s
    untied = np.sqrt(np.abs(s).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return concordance / np.outer(untied, untied)


def pearson_from_kendall(tau: np.ndarray) -> np.ndarray:
    """Pearson-equivalent correlation of a Gaussian copula: sin(pi tau / 2); NaN -> 0."""
    tau = np.asarray(tau, dtype=np.float64)
    rho = np.sin(0.5 * np.pi * np.where(np.isfinite(tau), tau, 0.0))
    return np.clip(rho, -1.0, 1.0)


def repair_correlation(
    c: np.ndarray, min_eigenvalue: float = MIN_EIGENVALUE
) -> RepairedCorrelation:
    """Nearest-enough positive-definite correlation matrix (symmetric, unit diagonal).

    NaN/inf entries become 0, the matrix is symmetrised and clipped to [-1, 1]; when Cholesky
    still fails, eigenvalues are clipped to ``min_eigenvalue`` and the diagonal rescaled to 1
    (a few rounds); jitter on the diagonal and finally the identity are the last resorts.
    """
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"a correlation matrix must be square, got shape {c.shape}")
    if c.shape[0] == 0:
        return RepairedCorrelation(c.copy(), False)
    clean = np.where(np.isfinite(c), c, 0.0)
    clean = np.clip(0.5 * (clean + clean.T), -1.0, 1.0)
    np.fill_diagonal(clean, 1.0)
    changed = not np.array_equal(clean, c)
    if _is_positive_definite(clean, min_eigenvalue):
        return RepairedCorrelation(clean, changed)
    repaired = clean
    for _ in range(10):
        try:
            values, vectors = np.linalg.eigh(repaired)
        except np.linalg.LinAlgError:
            break
        repaired = (vectors * np.maximum(values, min_eigenvalue)) @ vectors.T
        scale = 1.0 / np.sqrt(np.diag(repaired))
        repaired = repaired * np.outer(scale, scale)
        repaired = 0.5 * (repaired + repaired.T)
        np.fill_diagonal(repaired, 1.0)
        if _is_positive_definite(repaired, 0.5 * min_eigenvalue):
            return RepairedCorrelation(repaired, True)
    for jitter in (1e-4, 1e-3, 1e-2, 1e-1):
        candidate = (clean + jitter * np.eye(len(clean))) / (1.0 + jitter)
        if _is_positive_definite(candidate, 0.0):
            log.debug("correlation repaired with diagonal jitter %g", jitter)
            return RepairedCorrelation(candidate, True)
    log.warning("correlation matrix could not be repaired; using the identity")
    return RepairedCorrelation(np.eye(len(clean)), True)


def _is_positive_definite(c: np.ndarray, min_eigenvalue: float) -> bool:
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        return False
    return bool(np.linalg.eigvalsh(c)[0] >= min_eigenvalue)


def cholesky_factor(correlation: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a correlation matrix, repaired first if needed."""
    return np.linalg.cholesky(repair_correlation(correlation).matrix)


def cholesky_from_kendall(tau: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of the repaired Pearson-equivalent of a Kendall matrix."""
    return cholesky_factor(pearson_from_kendall(tau))


def pearson_rows(samples: np.ndarray) -> np.ndarray:
    """Pearson correlation between the rows of a (rows x observations) array; constant rows -> 0."""
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1)
    safe = np.where(norm > 0, norm, 1.0)
    c = (x / safe[:, None]) @ (x / safe[:, None]).T
    np.fill_diagonal(c, 1.0)
    return np.clip(c, -1.0, 1.0)
