"""Slice-to-slice irregularity of a short-axis label stack: one number for 3D consistency.

For each structure (LV, MYO, RV) along the slice axis:

- area term: mean |second difference| of its in-plane area (mm2) over runs of three consecutive
  slices that all contain it, divided by its mean area over the slices that contain it;
- centroid term: mean |second difference| of its in-plane centroid (mm, Euclidean) over the same
  runs, divided by its equivalent radius sqrt(mean area / pi);
- gap term: share of interior slices where it is missing although present on both sides.

The structure's irregularity is the sum of the three (dimensionless); the stack's is the mean
over the structures it contains (0.0 for an empty stack). A stack whose areas and centroids vary
linearly along z scores exactly 0; jitter between slices raises every term. Runs that touch a
slice without the structure are left out, so the start and end of a structure (base, apex) are
not counted as irregular: only the gap term sees a structure that vanishes in mid-stack.

The measure is per slice step, so stacks are only comparable at the same number of slices over
the same extent; :func:`resample_slices` picks the nearest slices to put them on one sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import STRUCTURES
from cardio_explorer.engine.volume import LabelVolume


@dataclass(frozen=True)
class StructureIrregularity:
    """Irregularity terms of one structure (all dimensionless)."""

    area: float
    centroid: float
    gaps: float

    @property
    def total(self) -> float:
        """Sum of the three terms."""
        return self.area + self.centroid + self.gaps


@dataclass(frozen=True)
class Irregularity:
    """Stack irregularity and its per-structure breakdown (absent structures left out)."""

    total: float
    structures: dict[str, StructureIrregularity]

    def as_dict(self) -> dict[str, float]:
        """Flat dict: total and <structure>_<term> entries (for JSON reports)."""
        out = {"total": self.total}
        for name, s in self.structures.items():
            out.update(
                {f"{name}_area": s.area, f"{name}_centroid": s.centroid, f"{name}_gaps": s.gaps}
            )
        return out


def structure_irregularity(
    mask: np.ndarray, spacing_yx: tuple[float, float]
) -> StructureIrregularity | None:
    """Irregularity of a boolean (z, y, x) mask; None when the structure is absent."""
    sy, sx = spacing_yx
    areas_px = mask.sum(axis=(1, 2)).astype(np.float64)
    present = areas_px > 0
    if not present.any():
        return None
    areas = areas_px * sy * sx
    n = len(areas)
    zz, yy, xx = np.nonzero(mask)
    counts = np.maximum(np.bincount(zz, minlength=n), 1)
    centroids = np.stack(
        [
            np.bincount(zz, weights=yy, minlength=n) / counts * sy,
            np.bincount(zz, weights=xx, minlength=n) / counts * sx,
        ],
        axis=1,
    )
    mean_area = float(areas[present].mean())
    runs = present[:-2] & present[1:-1] & present[2:] if n >= 3 else np.zeros(0, dtype=bool)
    if runs.any():
        d2_area = np.abs(areas[:-2] - 2 * areas[1:-1] + areas[2:])[runs]
        d2_centre = np.linalg.norm(centroids[:-2] - 2 * centroids[1:-1] + centroids[2:], axis=1)
        area_term = float(d2_area.mean()) / mean_area
        centroid_term = float(d2_centre[runs].mean()) / np.sqrt(mean_area / np.pi)
    else:
        area_term = centroid_term = 0.0
    gaps = 0.0
    if n >= 3:
        first, last = np.flatnonzero(present)[[0, -1]]
        interior = ~present[first : last + 1]
        gaps = float(interior.sum()) / (n - 2)
    return StructureIrregularity(area_term, centroid_term, gaps)


def slice_irregularity(labels: LabelVolume) -> Irregularity:
    """Irregularity of a 3D label stack (axis 0 the slice axis) with per-structure terms."""
    if labels.is_4d:
        raise CardioInputError(labels.name or "label volume", "expected one 3D frame, got 3D+t")
    _, sy, sx = labels.spacing_zyx
    structures = {}
    for name, value in STRUCTURES.items():
        result = structure_irregularity(labels.data == value, (sy, sx))
        if result is not None:
            structures[name] = result
    total = float(np.mean([s.total for s in structures.values()])) if structures else 0.0
    return Irregularity(total, structures)


def irregularity(labels: LabelVolume) -> float:
    """Slice-to-slice irregularity of a 3D label stack (0 for a linearly varying stack)."""
    return slice_irregularity(labels).total


def resample_slices(labels: LabelVolume, n_slices: int) -> LabelVolume:
    """The stack's nearest slices at ``n_slices`` positions spanning the same first/last centres."""
    if labels.is_4d:
        raise CardioInputError(labels.name or "label volume", "expected one 3D frame, got 3D+t")
    if n_slices < 1:
        raise CardioInputError("n_slices", f"must be at least 1, got {n_slices}")
    n = labels.spatial_shape[0]
    index = np.rint(np.linspace(0, n - 1, n_slices)).astype(int)
    affine = labels.affine.copy()
    if n > 1 and n_slices > 1:
        affine[:3, 2] *= (n - 1) / (n_slices - 1)
    return LabelVolume(data=labels.data[index], affine=affine, name=labels.name)
