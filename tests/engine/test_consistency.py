"""Slice-to-slice irregularity: zero for linear stacks, growing with jitter, gaps seen."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.metrics.consistency import (
    irregularity,
    resample_slices,
    slice_irregularity,
)
from cardio_explorer.engine.volume import LabelVolume

N_SLICES = 12


def _stack(heights, tops, lefts=None, width=6, label=1, size=48, spacing=(8.0, 1.5, 1.5)):
    """Rectangles of one label per slice: exact pixel areas and centroids."""
    data = np.zeros((len(heights), size, size), dtype=np.uint8)
    lefts = lefts if lefts is not None else [10] * len(heights)
    for k, (h, t, left) in enumerate(zip(heights, tops, lefts, strict=True)):
        data[k, t : t + h, left : left + width] = label
    return LabelVolume.from_array(data, spacing)


def _linear_stack():
    heights = [4 + 2 * k for k in range(N_SLICES)]  # area linear in k
    tops = [3 + k for k in range(N_SLICES)]  # centroid linear in k
    return _stack(heights, tops)


def test_linear_stack_scores_exactly_zero():
    result = slice_irregularity(_linear_stack())
    assert result.total == 0.0
    assert set(result.structures) == {"lv"}


def test_two_linear_structures_score_zero():
    vol = _linear_stack()
    data = vol.data.copy()
    data[:, 40:44, 30:36] = 3  # RV: constant rectangle, constant centroid
    assert irregularity(vol.with_data(data)) == 0.0


def test_jitter_raises_irregularity_monotonically(rng):
    base = np.array([4 + 2 * k for k in range(N_SLICES)])
    scores = []
    for amplitude in (0, 1, 3, 6):
        heights = base + rng.integers(-amplitude, amplitude + 1, N_SLICES) if amplitude else base
        scores.append(irregularity(_stack(list(heights), [3] * N_SLICES)))
    assert scores[0] == 0.0
    assert scores[1] > 0.0
    assert scores[1] < scores[2] < scores[3]


def test_centroid_jitter_alone_is_seen():
    lefts = [10, 13] * (N_SLICES // 2)  # same areas, centroid zig-zags in x
    result = slice_irregularity(_stack([8] * N_SLICES, [5] * N_SLICES, lefts=lefts))
    lv = result.structures["lv"]
    assert lv.area == 0.0
    # second difference of a +-3 px zig-zag is 6 px = 9 mm; radius sqrt(48 px * 2.25 / pi)
    assert lv.centroid == pytest.approx(9.0 / np.sqrt(48 * 2.25 / np.pi))


def test_gap_in_mid_stack_is_counted():
    vol = _linear_stack()
    data = vol.data.copy()
    data[5] = 0
    result = slice_irregularity(vol.with_data(data))
    assert result.structures["lv"].gaps == pytest.approx(1 / (N_SLICES - 2))


def test_base_and_apex_without_the_structure_are_not_irregular():
    heights = [0, 0] + [4 + 2 * k for k in range(8)] + [0, 0]
    assert irregularity(_stack(heights, [3] * 12)) == 0.0


def test_dimensionless_under_in_plane_spacing(rng):
    heights = list(np.array([6 + 2 * k for k in range(N_SLICES)]) + rng.integers(-2, 3, N_SLICES))
    fine = irregularity(_stack(heights, [3] * N_SLICES, spacing=(8.0, 1.0, 1.0)))
    coarse = irregularity(_stack(heights, [3] * N_SLICES, spacing=(8.0, 2.0, 2.0)))
    assert fine == pytest.approx(coarse)
    assert fine > 0


def test_empty_and_tiny_stacks_score_zero():
    assert irregularity(LabelVolume.from_array(np.zeros((5, 8, 8), np.uint8), (5, 1, 1))) == 0.0
    assert irregularity(_stack([4, 6], [2, 2])) == 0.0


def test_breakdown_as_dict_has_every_term():
    d = slice_irregularity(_linear_stack()).as_dict()
    assert set(d) == {"total", "lv_area", "lv_centroid", "lv_gaps"}


def test_resample_slices_keeps_first_and_last_centres():
    vol = _linear_stack()
    out = resample_slices(vol, 4)
    assert out.spatial_shape == (4, 48, 48)
    assert out.spacing_zyx[0] == pytest.approx(8.0 * (N_SLICES - 1) / 3)
    np.testing.assert_allclose(out.index_to_world([[3, 0, 0]]), vol.index_to_world([[11, 0, 0]]))
    np.testing.assert_array_equal(out.data[-1], vol.data[-1])


def test_4d_input_is_rejected():
    vol = LabelVolume.from_array(np.zeros((2, 3, 4, 4), np.uint8), (1, 1, 1))
    with pytest.raises(CardioInputError, match="3D"):
        irregularity(vol)
