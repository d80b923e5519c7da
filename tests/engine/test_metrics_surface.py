"""Hausdorff and ASSD against analytic shapes, anisotropic spacing, empty structures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.surface import assd_mm, hausdorff_mm, surface_distances
from cardio_explorer.engine.volume import LabelVolume


def _sphere(shape, spacing, centre, radius_mm: float) -> np.ndarray:
    idx = np.indices(shape, dtype=np.float64)
    d2 = sum(((idx[i] - centre[i]) * spacing[i]) ** 2 for i in range(3))
    return d2 <= radius_mm**2


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 1.25, 1.5), (8.0, 1.5, 1.5)])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_sphere_shifted_by_k_voxels_has_hd_k_spacing(spacing, axis: int) -> None:
    shape = (12, 40, 40) if spacing[0] > 4 else (28, 36, 36)
    centre = np.array(shape) / 2.0
    k = 2
    shifted = centre.copy()
    shifted[axis] += k
    radius = 12.0 if spacing[0] < 4 else 20.0
    a = _sphere(shape, spacing, centre, radius)
    b = _sphere(shape, spacing, shifted, radius)
    pred = LabelVolume.from_array(np.where(a, Label.LV, 0).astype(np.uint8), spacing)
    ref = LabelVolume.from_array(np.where(b, Label.LV, 0).astype(np.uint8), spacing)
    hd = hausdorff_mm(pred, ref)
    assert hd["lv"] == pytest.approx(k * spacing[axis])
    assert hd["myo"] == 0.0  # absent on both sides
    assert 0 < hausdorff_mm(pred, ref, percentile=95)["lv"] <= hd["lv"]
    assert 0 < assd_mm(pred, ref)["lv"] < k * spacing[axis]


def test_identical_volumes_have_zero_distances() -> None:
    data = np.zeros((6, 20, 20), np.uint8)
    data[1:5, 4:12, 4:12] = Label.LV
    data[1:5, 12:16, 4:12] = Label.MYO
    data[1:5, 2:18, 14:18] = Label.RV
    vol = LabelVolume.from_array(data, (6.0, 1.3, 1.7))
    assert assd_mm(vol, vol) == {"lv": 0.0, "myo": 0.0, "rv": 0.0, "mean": 0.0}
    assert hausdorff_mm(vol, vol)["mean"] == 0.0


def test_one_sided_empty_structure_is_inf_without_crash() -> None:
    ref = np.zeros((4, 10, 10), np.uint8)
    ref[1:3, 2:6, 2:6] = Label.RV
    pred = np.zeros_like(ref)
    a = LabelVolume.from_array(pred, (5.0, 1.5, 1.5))
    b = LabelVolume.from_array(ref, (5.0, 1.5, 1.5))
    assert math.isinf(hausdorff_mm(a, b)["rv"])
    assert math.isinf(assd_mm(a, b)["mean"])
    assert hausdorff_mm(a, b)["lv"] == 0.0


def test_surface_distances_2d_planes_known_offset() -> None:
    a = np.zeros((20, 20), bool)
    b = np.zeros_like(a)
    a[5:15, 5:10] = True
    b[5:15, 8:13] = True  # shifted 3 columns
    d = surface_distances(a, b, spacing=(1.0, 0.5))
    assert max(d.pred_to_ref.max(), d.ref_to_pred.max()) == pytest.approx(1.5)


def test_4d_volumes_average_per_frame() -> None:
    frames = np.zeros((2, 8, 16, 16), np.uint8)
    frames[:, 2:6, 4:10, 4:10] = Label.LV
    ref = LabelVolume.from_array(frames, (2.0, 1.0, 1.0))
    moved = frames.copy()
    moved[1] = np.roll(frames[1], 1, axis=2)  # frame 1 shifted by 1 mm, frame 0 identical
    pred = LabelVolume.from_array(moved, (2.0, 1.0, 1.0))
    assert hausdorff_mm(pred, ref)["lv"] == pytest.approx(0.5)
