"""Distances between two samples of one phenotype (e.g. generated vs reference LVEDV).

Both are the measures the CHeart paper reports for its generated cohorts: the 1-D Wasserstein
(earth mover's) distance, in the phenotype's own unit, and the KL divergence of histograms.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from cardio_explorer.engine.errors import CardioInputError

# Pseudo-count added to every histogram bin: the Krichevsky-Trofimov (Jeffreys prior)
# estimate, which keeps KL finite when one sample has no mass where the other has some.
KL_PSEUDO_COUNT = 0.5


def _sample(x: object, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size == 0:
        raise CardioInputError(what, "sample is empty")
    if not np.all(np.isfinite(arr)):
        raise CardioInputError(what, "sample contains NaN or infinite values")
    return arr


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """1-D Wasserstein distance between two samples (same unit as the samples)."""
    return float(stats.wasserstein_distance(_sample(a, "sample a"), _sample(b, "sample b")))


def kl_divergence(
    p_samples: np.ndarray,
    q_samples: np.ndarray,
    bins: int | str = 20,
    pseudo_count: float = KL_PSEUDO_COUNT,
) -> float:
    """KL(P || Q) in nats between two samples, from histograms on their shared range.

    Both samples are binned on the same edges spanning the pooled range (``bins`` as in
    ``np.histogram_bin_edges`` on the pooled sample: a count or a rule such as "auto");
    ``pseudo_count`` is added to every bin before normalising, so the result is finite even
    for samples that do not overlap, and 0 for identical samples.
    """
    p = _sample(p_samples, "sample p")
    q = _sample(q_samples, "sample q")
    if pseudo_count <= 0:
        raise CardioInputError("pseudo_count", f"must be positive, got {pseudo_count}")
    pooled = np.concatenate([p, q])
    lo, hi = float(pooled.min()), float(pooled.max())
    if hi == lo:  # every value identical: one bin, no divergence
        return 0.0
    edges = np.histogram_bin_edges(pooled, bins=bins, range=(lo, hi))
    p_hist = np.histogram(p, bins=edges)[0] + pseudo_count
    q_hist = np.histogram(q, bins=edges)[0] + pseudo_count
    p_prob, q_prob = p_hist / p_hist.sum(), q_hist / q_hist.sum()
    return float(np.sum(p_prob * np.log(p_prob / q_prob)))
