"""Dice on known overlaps, batches of slices, empty structures and mismatched grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.overlap import dice_per_structure, dice_scores
from cardio_explorer.engine.volume import LabelVolume


def _volume(data: np.ndarray, spacing=(5.0, 1.5, 1.5)) -> LabelVolume:
    return LabelVolume.from_array(data.astype(np.uint8), spacing)


def test_dice_of_known_overlaps_per_structure() -> None:
    ref = np.zeros((2, 10, 10), np.uint8)
    pred = np.zeros_like(ref)
    ref[:, 0:4, :] = Label.LV  # 80 voxels
    pred[:, 2:4, :] = Label.LV  # 40 voxels, all inside ref -> 2*40/120
    ref[:, 5:7, :] = Label.MYO  # 40 voxels
    pred[:, 6:8, :] = Label.MYO  # 40 voxels, 20 shared -> 0.5
    pred[:, 9, :] = Label.RV  # RV only predicted -> 0
    scores = dice_per_structure(_volume(pred), _volume(ref))
    assert scores["lv"] == pytest.approx(2 * 40 / 120)
    assert scores["myo"] == pytest.approx(0.5)
    assert scores["rv"] == 0.0
    assert scores["mean"] == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)


def test_identical_and_both_empty_score_one() -> None:
    data = np.zeros((2, 8, 8), np.uint8)
    data[:, 2:5, 2:5] = Label.LV
    scores = dice_per_structure(_volume(data), _volume(data))
    assert scores == {"lv": 1.0, "myo": 1.0, "rv": 1.0, "mean": 1.0}


def test_grid_mismatch_is_a_clear_error() -> None:
    a = _volume(np.zeros((2, 8, 8)))
    with pytest.raises(CardioInputError, match="grid differs"):
        dice_per_structure(a, _volume(np.zeros((2, 8, 8)), spacing=(5.0, 1.0, 1.0)))
    with pytest.raises(CardioInputError, match="grid differs"):
        dice_per_structure(a, _volume(np.zeros((3, 8, 8))))


def test_dice_scores_batch_of_slices_and_torch_input() -> None:
    ref = np.zeros((3, 6, 6), np.int64)
    ref[:, :3] = 1
    pred = ref.copy()
    pred[1, :3] = 0  # slice 1 misses the LV completely
    pred[2] = 0
    pred[2, :3, :3] = 1  # slice 2: 9 of 18 -> 2*9/27
    per = dice_scores(pred, ref, labels=(1, 2), per_sample=True)
    assert per.shape == (3, 2)
    np.testing.assert_allclose(per[:, 0], [1.0, 0.0, 2 * 9 / 27])
    np.testing.assert_allclose(per[:, 1], 1.0)  # label 2 absent everywhere
    pooled = dice_scores(torch.from_numpy(pred), torch.from_numpy(ref), labels=(1,))
    assert pooled.shape == (1,)
    assert pooled[0] == pytest.approx(2 * 27 / (27 + 54))


def test_dice_scores_rejects_bad_labels() -> None:
    with pytest.raises(CardioInputError, match="shapes differ"):
        dice_scores(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(CardioInputError, match="integer labels"):
        dice_scores(np.full((2, 2), 0.5), np.zeros((2, 2)))
