"""Dice pooling, deltas and paired tests of ``evaluate utility``; the MONAI augmentation arm."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.spade.data import ImageLabelSlices
from cardio_explorer.engine.utility import stats
from cardio_explorer.engine.utility.arms import arm_slices
from cardio_explorer.engine.utility.augment import AugmentSettings, augment_slices


def _volume(subject: str, group: str, dice: float) -> dict:
    return {"subject": subject, "group": group, "phase": "ED", "lv": dice, "myo": dice,
            "rv": dice, "mean": dice}  # fmt: skip


def _records(offset: float) -> list[list[dict]]:
    """Two seeds of three volumes (NOR, DCM, HCM); seed 1 is 0.1 better everywhere."""
    return [
        [
            _volume("n1", "NOR", 0.8 + s * 0.1 + offset),
            _volume("d1", "DCM", 0.6 + s * 0.1 + offset),
            _volume("h1", "HCM", 0.4 + s * 0.1 + offset),
        ]
        for s in range(2)
    ]


def test_pools_average_volumes_per_seed_then_mean_and_sd_over_seeds():
    table = stats.dice_table({"a": _records(0.0)})
    path = table["a"]["pathological"]["mean"]
    # seed 0: (0.6 + 0.4) / 2 = 0.5; seed 1: 0.6 -> mean 0.55, sample SD 0.0707
    assert path["mean"] == pytest.approx(0.55)
    assert path["sd"] == pytest.approx(0.0707, abs=1e-4)
    assert table["a"]["nor"]["lv"]["mean"] == pytest.approx(0.85)
    assert table["a"]["all"]["mean"]["mean"] == pytest.approx((0.6 + 0.7) / 2)
    assert "unknown" not in table["a"]
    assert table["a"]["DCM"]["rv"]["n_seeds"] == 2


def test_deltas_and_flat_keys_and_paired_test():
    records = {"a": _records(0.0), "b": _records(0.01), "c": _records(0.03)}
    delta = stats.deltas(stats.dice_table(records))
    assert delta["c_minus_a"]["pathological"] == pytest.approx(0.03)
    assert delta["c_minus_b"]["nor"] == pytest.approx(0.02)
    flat = stats.flat_deltas(delta)
    assert flat["delta.c_minus_a.nor"] == pytest.approx(0.03)
    tests = stats.paired_tests(records)
    assert tests["c_minus_a"]["pathological"]["n_volumes"] == 2
    assert tests["c_minus_a"]["all"]["median_difference"] == pytest.approx(0.03)
    assert 0.0 < tests["c_minus_a"]["all"]["p_value"] <= 1.0
    same = stats.paired_tests({"a": _records(0.0), "b": _records(0.0), "c": _records(0.0)})
    assert same["c_minus_b"]["nor"]["p_value"] == 1.0
    targets = stats.targets(delta, "x")
    assert targets["x: delta.c_minus_a.pathological"]["pass"]  # +0.03 >= +0.02
    assert targets["x: delta.c_minus_b.pathological (c beats b)"]["pass"]


def test_the_combined_arm_is_compared_with_augmentation_only_when_it_ran():
    three = {"a": _records(0.0), "b": _records(0.01), "c": _records(0.03)}
    assert "d_minus_b" not in stats.deltas(stats.dice_table(three))
    assert "d_minus_b" not in stats.paired_tests(three)
    four = {**three, "d": _records(0.05)}
    delta = stats.deltas(stats.dice_table(four))
    assert delta["d_minus_b"]["pathological"] == pytest.approx(0.04)
    assert stats.flat_deltas(delta)["delta.d_minus_b.nor"] == pytest.approx(0.04)
    paired = stats.paired_tests(four)
    assert paired["d_minus_b"]["all"]["median_difference"] == pytest.approx(0.04)
    assert set(stats.targets(delta, "x")) == set(
        stats.targets(stats.deltas(stats.dice_table(three)), "x")
    )  # (d) is reported, never a target


def test_unknown_groups_have_no_pathological_delta():
    unknown = [[{**v, "group": "unknown"} for v in seed] for seed in _records(0.0)]
    delta = stats.deltas(stats.dice_table({"a": unknown, "b": unknown, "c": unknown}))
    assert delta["c_minus_a"]["pathological"] is None
    assert delta["c_minus_a"]["all"] == 0.0


def _slices(n: int = 4, size: int = 48) -> ImageLabelSlices:
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n, size, size), dtype=np.uint8)
    for k in range(n):
        d = np.hypot(yy - 24 - k, xx - 22)
        labels[k][d < 14] = 2
        labels[k][d < 9] = 1
        labels[k][np.hypot(yy - 24, xx - 38) < 6] = 3
    images = np.array([-0.8, 0.7, -0.1, 0.4], dtype=np.float32)[labels]
    zeros = np.zeros(n, dtype=np.int32)
    return ImageLabelSlices(labels, images, ("s",), zeros, zeros, np.arange(n, dtype=np.int32))


def test_augmentation_moves_image_and_labels_together_and_is_seeded():
    real = _slices()
    out = augment_slices(real, 12, AugmentSettings(), seed=3)
    again = augment_slices(real, 12, AugmentSettings(), seed=3)
    assert len(out) == 12
    assert np.array_equal(out.labels, again.labels)
    assert not np.array_equal(out.labels, real.labels[out.slice_index])  # it did deform
    assert set(np.unique(out.labels)) <= {0, 1, 2, 3}
    # aligned: inside each (eroded) label, the image keeps that tissue's intensity
    lv = out.labels == 1
    assert np.median(out.images[lv]) == pytest.approx(0.7, abs=0.05)
    assert np.median(out.images[out.labels == 0]) == pytest.approx(-0.8, abs=0.05)


def test_real_slices_are_repeated_to_about_half_of_an_arm():
    real = _slices(4)
    extra = augment_slices(real, 13, AugmentSettings(), seed=0)
    mixed = arm_slices(real, extra)
    assert len(mixed) == 3 * 4 + 13
    assert arm_slices(real, None) is real
