"""Pseudo-pathology latent stacks: truncated-normal marginals joined by a Gaussian copula.

Each element (slice k, latent dimension d) of a target group's 32 x nz stack follows a normal
distribution with the group's mean and std, truncated to the group's [min, max]. In correlated
mode the elements are made dependent through a Gaussian copula: a standard-normal matrix Z is
drawn, correlated as L_s @ Z @ L_z.T (L_z: Cholesky factor of the latent-dimension correlation of
the group; L_s: of the slice correlation of the chosen NOR subject, see slice_correlation),
mapped to uniforms with the normal CDF and through each element's truncated-normal inverse CDF.
Because both correlation matrices have a unit diagonal, every element of L_s @ Z @ L_z.T is
still standard normal, so each element keeps exactly its group's truncated-normal marginal;
only the dependence changes.
Uncorrelated mode uses the identity for both factors, which is plain inverse-CDF sampling of the
truncated normals (the raw sample); with the same seed both modes share the same Z.
The ED and ES stacks of one seed share one correlated draw (both take the ED correlations), so
they are one heart at two phases and its ejection fraction is the group's.

Why this differs from the public code of the seed paper: it multiplies the raw (unstandardised)
truncated-normal sample X by the factors, L_s @ X @ L_z.T. The rows of a Cholesky factor do not
sum to one, so that product also rescales and mixes the group means across slices and latent
dimensions (the mean of slice k becomes a weighted sum of the means of slices 0..k), inflates or
shrinks the spread, and breaks the [min, max] bounds: the "pathology" sample drifts away from
the group it was drawn for. Standardising first, correlating, then mapping back (a Gaussian
copula) correlates without moving the marginals.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np
from scipy import special

from cardio_explorer.engine.label_vae.atlas import GroupStats, LatentAtlas
from cardio_explorer.engine.label_vae.correlation import (
    cholesky_factor,
    cholesky_from_kendall,
    pearson_rows,
)

log = logging.getLogger(__name__)

# The phase whose correlations every phase of a seed's sample takes (see PseudoPathologySampler).
COUPLING_PHASE = "ED"
# Uniforms are kept this far from 0 and 1 so the inverse CDFs stay finite.
_U_EPS = 1e-12


def truncated_normal_ppf(
    u: np.ndarray, mean: np.ndarray, std: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Element-wise inverse CDF of N(mean, std) truncated to [lower, upper] at uniforms ``u``.

    Degenerate statistics never fail: NaN bounds mean no bound, swapped bounds are reordered,
    std 0 or NaN gives the mean (clipped to the bounds), equal bounds give that bound, a NaN
    mean falls back to the middle of finite bounds (else 0).
    """
    u, mean, std, lower, upper = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (u, mean, std, lower, upper))
    )
    lo = np.where(np.isnan(lower), -np.inf, lower)
    hi = np.where(np.isnan(upper), np.inf, upper)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    bounded = np.isfinite(lo) & np.isfinite(hi)
    middle = np.where(bounded, 0.5 * (np.where(bounded, lo, 0.0) + np.where(bounded, hi, 0.0)), 0.0)
    centre = np.where(np.isfinite(mean), mean, middle)
    if not np.all(np.isfinite(mean)):
        log.warning("latent statistics contain NaN means; using the middle of their bounds")
    out = np.clip(centre, lo, hi)
    random = np.isfinite(std) & (std > 0) & (hi > lo)
    if np.any(random):
        scale = std[random]
        a = (lo[random] - centre[random]) / scale
        b = (hi[random] - centre[random]) / scale
        p = np.clip(u[random], _U_EPS, 1.0 - _U_EPS)
        with np.errstate(all="ignore"):
            values = centre[random] + scale * _standard_truncated_ppf(p, a, b)
        # ppf can give NaN for a window far in one tail; the nearer bound is the right limit.
        bad = ~np.isfinite(values)
        if np.any(bad):
            nearest = np.where(np.abs(a[bad]) < np.abs(b[bad]), lo[random][bad], hi[random][bad])
            values[bad] = nearest
        out[random] = np.clip(values, lo[random], hi[random])
    return out


def _standard_truncated_ppf(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Inverse CDF of N(0, 1) truncated to [a, b]. A window right of 0 is mirrored to the left so
    # the CDF differences are taken where Phi is small and keeps its precision (scipy's truncnorm
    # does the same; importing scipy.stats for it alone cost 0.3 s of the app's launch).
    right = a > 0
    lo = np.where(right, -b, a)
    hi = np.where(right, -a, b)
    q = np.where(right, 1.0 - p, p)
    phi_lo = special.ndtr(lo)
    x = special.ndtri(phi_lo + q * (special.ndtr(hi) - phi_lo))
    return np.where(right, -x, x)


def standard_normal_draw(shape: tuple[int, int], seed: int) -> np.ndarray:
    """The seed's standard-normal matrix (shared by both modes, all groups and both phases)."""
    return np.random.default_rng(seed).standard_normal(shape)


def copula_sample(
    group_stats: GroupStats,
    z: np.ndarray,
    dim_factor: np.ndarray | None = None,
    slice_factor: np.ndarray | None = None,
) -> np.ndarray:
    """Truncated-normal sample of a group from standard normals ``z`` (n_slices x nz).

    ``slice_factor`` (n_slices x n_slices, left) and ``dim_factor`` (nz x nz, right, transposed)
    are lower Cholesky factors of correlation matrices; None means independent.
    """
    correlated = np.asarray(z, dtype=np.float64)
    if slice_factor is not None:
        correlated = slice_factor @ correlated
    if dim_factor is not None:
        correlated = correlated @ dim_factor.T
    u = special.ndtr(correlated)
    return truncated_normal_ppf(
        u, group_stats.mean, group_stats.std, group_stats.min, group_stats.max
    )


def sample_pseudo_pathology(
    group_stats: GroupStats,
    seed: int,
    dim_factor: np.ndarray | None = None,
    slice_factor: np.ndarray | None = None,
) -> np.ndarray:
    """One seeded pseudo-pathology stack (n_slices x nz) of a group; see the module docstring."""
    return copula_sample(
        group_stats, standard_normal_draw(group_stats.mean.shape, seed), dim_factor, slice_factor
    )


def slice_correlation(codes: np.ndarray) -> np.ndarray:
    """Pearson correlation between the slices (rows) of an n_slices x nz stack, over latent dims.

    Pearson, not the Kendall-to-Pearson map used for latent dimensions: with 32 slices and only
    nz observations each, sin(pi tau / 2) is far from positive semi-definite (about half of the
    eigenvalues negative, down to -0.5, for the bundled atlas), and clipping them decorrelates
    neighbouring slices; a Pearson matrix is a Gram matrix, so it is PSD by construction and keeps
    neighbours together (irregularity of correlated endpoints 0.36 -> 0.25 on held-out data).
    """
    return pearson_rows(codes)


class PseudoPathologySampler:
    """Seeded samples of an atlas's groups, with Cholesky factors and samples cached.

    Samples are cached per (subject, group, phase, correlated, seed), so moving alpha only
    costs a linear interpolation and a decode. Returned arrays are read-only.
    """

    def __init__(self, atlas: LatentAtlas, cache_size: int = 128) -> None:
        self.atlas = atlas
        self.cache_size = cache_size
        self._factors: dict[Hashable, np.ndarray] = {}
        self._samples: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    def dim_factor(self, group: str, phase: str) -> np.ndarray:
        """Cholesky factor of the group's latent-dimension correlation (repaired if needed)."""
        key = ("dims", group, phase)
        if key not in self._factors:
            self._factors[key] = cholesky_from_kendall(
                self.atlas.group_stats(group, phase).dim_kendall
            )
        return self._factors[key]

    def slice_factor(self, subject_id: str, phase: str) -> np.ndarray:
        """Cholesky factor of a subject's slice correlation (Pearson; repaired if needed)."""
        key = ("slices", subject_id, phase)
        if key not in self._factors:
            codes = self.atlas.reference(subject_id).phase_codes(phase)
            self._factors[key] = cholesky_factor(slice_correlation(codes))
        return self._factors[key]

    def _coupling_phase(self, group: str, phase: str) -> str:
        return COUPLING_PHASE if (group, COUPLING_PHASE) in self.atlas.stats else phase

    def sample(
        self,
        subject_id: str | None,
        group: str,
        phase: str,
        correlated: bool = True,
        seed: int = 0,
    ) -> np.ndarray:
        """Pseudo-pathology stack of ``group`` at ``phase``, slice-correlated like ``subject_id``.

        ``subject_id`` None correlates latent dimensions only.
        """
        key = (subject_id if correlated else None, group, phase, bool(correlated), int(seed))
        if key in self._samples:
            self._samples.move_to_end(key)
            return self._samples[key]
        group_stats = self.atlas.group_stats(group, phase)
        dim_factor = slice_factor = None
        if correlated:
            # Both phases take the ED correlations, so a seed's ED and ES share one correlated
            # normal draw: each element keeps its quantile and the two phases are one heart.
            # Each phase's own correlations made them two hearts (endpoint LVEF 9-62 % for MINF,
            # real 33 +- 7 %).
            dim_factor = self.dim_factor(group, self._coupling_phase(group, phase))
            if subject_id is not None:
                codes_phase = COUPLING_PHASE
                if COUPLING_PHASE not in self.atlas.reference(subject_id).codes:
                    codes_phase = phase
                slice_factor = self.slice_factor(subject_id, codes_phase)
        sample = sample_pseudo_pathology(group_stats, int(seed), dim_factor, slice_factor)
        sample.setflags(write=False)
        self._samples[key] = sample
        while len(self._samples) > self.cache_size:
            self._samples.popitem(last=False)
        return sample
