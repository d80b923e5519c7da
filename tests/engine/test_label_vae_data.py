"""Label slices of a cohort for the label VAE: collection, subject splits, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.slices import (
    augment_labels,
    collect_label_slices,
    split_subjects,
)
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume


def _heart(n_slices: int, size: int, shift: int = 0) -> np.ndarray:
    """LV disc, myocardium ring, RV blob to the image left of the LV."""
    yy, xx = np.mgrid[:size, :size]
    stack = np.zeros((n_slices, size, size), np.uint8)
    cy, cx = size // 2, size // 2 + shift
    for k in range(n_slices):
        r = size * 0.15 * (1 - 0.5 * k / max(n_slices, 1))
        d = np.hypot(yy - cy, xx - cx)
        stack[k][np.hypot(yy - cy, xx - (cx - 2.2 * r)) < r] = 3
        stack[k][d < r + 2] = 2
        stack[k][d < r] = 1
    return stack


def _subject(sid: str, group: str, n_slices: int = 4, size: int = 32, es: bool = True) -> Subject:
    labels = {0: LabelVolume.from_array(_heart(n_slices, size), (8.0, 2.0, 2.0))}
    if es:
        labels[5] = LabelVolume.from_array(_heart(n_slices + 1, size, 1), (8.0, 2.0, 2.0))
    return Subject(sid, group, None, 0, 5 if es else None, 10, labels)


def test_collects_every_ed_and_es_slice_with_its_origin():
    subjects = [_subject("a", "NOR", 3), _subject("b", "DCM", 4, es=False)]
    slices = collect_label_slices(subjects, size=32)
    assert len(slices) == 3 + 4 + 4
    assert slices.labels.dtype == np.uint8
    assert slices.size == (32, 32)
    assert slices.subject_ids == ("a", "b")
    stacks = {(sid, phase): idx for sid, phase, idx in slices.stacks()}
    assert set(stacks) == {("a", "ED"), ("a", "ES"), ("b", "ED")}
    es = stacks[("a", "ES")]
    assert slices.slice_index[es].tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(slices.labels[es], subjects[0].labels[5].data)
    only_ed = collect_label_slices(subjects, phases=("ED",))
    assert len(only_ed) == 7
    assert set(only_ed.phase_index.tolist()) == {0}


def test_slices_of_the_wrong_size_ask_for_preprocessing():
    subjects = [_subject("a", "NOR"), _subject("big", "NOR", size=48)]
    with pytest.raises(CardioInputError, match="big: ED slices are 48 x 48, expected 32 x 32"):
        collect_label_slices(subjects)
    with pytest.raises(CardioInputError, match="preprocess"):
        collect_label_slices(subjects[:1], size=128)
    with pytest.raises(CardioInputError, match="no subjects"):
        collect_label_slices([])


def _cohort(n_per_group: dict[str, int]) -> list[Subject]:
    return [
        _subject(f"{group.lower()}{i:02d}", group, 2, 16, es=False)
        for group, n in n_per_group.items()
        for i in range(n)
    ]


def test_split_is_disjoint_stratified_and_independent_of_order():
    subjects = _cohort({"NOR": 10, "DCM": 10, "HCM": 5, "ARV": 5})
    split = split_subjects(subjects, 0.2, seed=7)
    train_ids = {s.subject_id for s in split.train}
    val_ids = {s.subject_id for s in split.val}
    assert not train_ids & val_ids
    assert len(train_ids | val_ids) == 30
    assert len(val_ids) == 6
    per_group = {g: sum(s.group == g for s in split.val) for g in ("NOR", "DCM", "HCM", "ARV")}
    assert per_group == {"NOR": 2, "DCM": 2, "HCM": 1, "ARV": 1}
    again = split_subjects(list(reversed(subjects)), 0.2, seed=7)
    assert {s.subject_id for s in again.val} == val_ids
    other = split_subjects(subjects, 0.2, seed=8)
    assert {s.subject_id for s in other.val} != val_ids


def test_split_edge_cases():
    tiny = _cohort({"NOR": 3})
    assert len(split_subjects(tiny, 0.1).val) == 1  # at least one when asked for any
    assert split_subjects(tiny, 0.0).val == []
    assert split_subjects(tiny[:1], 0.5).val == []  # never the only subject
    with pytest.raises(CardioInputError, match="--val-fraction"):
        split_subjects(tiny, 1.0)
    with pytest.raises(CardioInputError, match="duplicate subject ids"):
        split_subjects(tiny + tiny[:1], 0.1)


def _centroid_x(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean())


def test_augmentation_moves_slices_a_little_and_never_flips():
    labels = torch.from_numpy(np.repeat(_heart(1, 64), 16, axis=0))
    out = augment_labels(labels, torch.Generator().manual_seed(0), 10.0, 4.0)
    assert out.shape == labels.shape
    assert out.dtype == torch.uint8
    assert set(torch.unique(out).tolist()) <= {0, 1, 2, 3}
    assert (out != labels).any(dim=(1, 2)).float().mean() > 0.5
    for sample in out.numpy():
        # the RV stays on the same side of the LV (a flip would swap it)
        assert _centroid_x(sample == 3) < _centroid_x(sample == 1) - 5
        lv_area = np.count_nonzero(sample == 1)
        assert abs(lv_area - np.count_nonzero(labels[0].numpy() == 1)) < 0.15 * lv_area
    same = augment_labels(labels, torch.Generator().manual_seed(0), 10.0, 4.0)
    assert torch.equal(out, same)
    assert torch.equal(augment_labels(labels, torch.Generator(), 0.0, 0.0), labels)
