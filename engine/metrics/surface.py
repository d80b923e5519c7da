"""Surface distances in mm per cardiac structure: Hausdorff (max, HD95) and ASSD.

A structure's surface is its voxels with a 6-connected (face) background neighbour, voxels on
the array border included. Distances go from each surface voxel centre of one side to the
nearest surface voxel centre of the other, with ``scipy.ndimage.distance_transform_edt`` and the
volume's own spacing, so anisotropic voxels are exact. The EDT runs only on the bounding box of
both masks (the nearest surface voxel always lies inside it), which keeps a 3D frame at a few
milliseconds per structure. MONAI's ``compute_hausdorff_distance`` does the same on one-hot
tensors but needs torch, batch and channel axes; its results match these on the tests' shapes.

Conventions: both sides empty -> 0.0 (they agree); one side empty -> ``inf`` (no surface to
reach). Percentile HD takes the larger of the two directed percentiles (as MONAI and the
CHeart paper). For a 3D+t volume the per-frame values are averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import STRUCTURES
from cardio_explorer.engine.volume import LabelVolume


class SurfaceDistances(NamedTuple):
    """Directed distances in mm: from every pred surface voxel to ref, and ref to pred."""

    pred_to_ref: np.ndarray
    ref_to_pred: np.ndarray


def _surface(mask: np.ndarray) -> np.ndarray:
    structure = ndi.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndi.binary_erosion(mask, structure=structure, border_value=0)


def surface_distances(
    pred_mask: np.ndarray, ref_mask: np.ndarray, spacing: Sequence[float]
) -> SurfaceDistances:
    """Directed surface distances (mm) between two boolean masks of any ndim with voxel spacing.

    An empty side gives empty distance arrays (callers decide what that means).
    """
    pred_mask = np.asarray(pred_mask, dtype=bool)
    ref_mask = np.asarray(ref_mask, dtype=bool)
    if pred_mask.shape != ref_mask.shape or len(spacing) != pred_mask.ndim:
        raise CardioInputError(
            "surface distance",
            f"masks {pred_mask.shape} and {ref_mask.shape} with spacing {tuple(spacing)} "
            "do not match",
        )
    empty = np.zeros(0, dtype=np.float64)
    if not pred_mask.any() or not ref_mask.any():
        return SurfaceDistances(empty, empty)
    # Crop to both masks' bounding box plus one voxel (so cropping creates no false surface).
    coords = np.nonzero(pred_mask | ref_mask)
    box = tuple(slice(max(int(c.min()) - 1, 0), int(c.max()) + 2) for c in coords)
    surf_p, surf_r = _surface(pred_mask[box]), _surface(ref_mask[box])
    dist_to_r = ndi.distance_transform_edt(~surf_r, sampling=spacing)
    dist_to_p = ndi.distance_transform_edt(~surf_p, sampling=spacing)
    return SurfaceDistances(dist_to_r[surf_p], dist_to_p[surf_r])


def _hd(d: SurfaceDistances, percentile: float) -> float:
    if d.pred_to_ref.size == 0 or d.ref_to_pred.size == 0:
        return np.nan  # resolved by the caller (both empty vs one empty)
    return float(
        max(np.percentile(d.pred_to_ref, percentile), np.percentile(d.ref_to_pred, percentile))
    )


def _assd(d: SurfaceDistances) -> float:
    if d.pred_to_ref.size == 0 or d.ref_to_pred.size == 0:
        return np.nan
    total = d.pred_to_ref.sum() + d.ref_to_pred.sum()
    return float(total / (d.pred_to_ref.size + d.ref_to_pred.size))


def _per_structure(
    pred: LabelVolume, ref: LabelVolume, reduce: Callable[[SurfaceDistances], float]
) -> dict[str, float]:
    if not pred.same_grid(ref) or pred.data.shape != ref.data.shape:
        raise CardioInputError(
            pred.name or "prediction",
            f"grid differs from the reference: shape {pred.data.shape} vs {ref.data.shape}, "
            f"spacing {pred.spacing_zyx} vs {ref.spacing_zyx}; resample one onto the other",
        )
    spacing = pred.spacing_zyx
    p_frames = pred.data if pred.is_4d else pred.data[None]
    r_frames = ref.data if ref.is_4d else ref.data[None]
    result: dict[str, float] = {}
    for name, label in STRUCTURES.items():
        values = []
        for p, r in zip(p_frames, r_frames, strict=True):
            pm, rm = p == label, r == label
            has_p, has_r = bool(pm.any()), bool(rm.any())
            if not has_p and not has_r:
                values.append(0.0)
            elif has_p != has_r:
                values.append(np.inf)
            else:
                values.append(reduce(surface_distances(pm, rm, spacing)))
        result[name] = float(np.mean(values))
    result["mean"] = float(np.mean([result[n] for n in STRUCTURES]))
    return result


def hausdorff_mm(pred: LabelVolume, ref: LabelVolume, percentile: float = 100) -> dict[str, float]:
    """Hausdorff distance in mm per structure (lv, myo, rv, mean); percentile=95 gives HD95."""
    if not 0 <= percentile <= 100:
        raise CardioInputError("percentile", f"must be within 0-100, got {percentile}")
    return _per_structure(pred, ref, lambda d: _hd(d, percentile))


def assd_mm(pred: LabelVolume, ref: LabelVolume) -> dict[str, float]:
    """Average symmetric surface distance in mm per structure (lv, myo, rv, mean)."""
    return _per_structure(pred, ref, _assd)
