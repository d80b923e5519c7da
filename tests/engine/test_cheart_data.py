"""Sequences on the model grid: nearest-neighbour resampling with geometry, ED first, splits."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.cheart.data import (
    build_sequences,
    heart_centre_xyz,
    resample_to_grid,
    subject_frames,
)
from cardio_explorer.engine.cheart.toy import toy_subjects
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume


def _blob(shape=(20, 40, 40), spacing=(2.0, 1.0, 1.0), origin=(5.0, -3.0, 7.0)) -> LabelVolume:
    data = np.zeros(shape, dtype=np.uint8)
    data[6:12, 10:26, 14:30] = 2
    data[8:10, 14:22, 18:26] = 1
    return LabelVolume.from_array(data, spacing, origin)


def test_a_centred_heart_on_the_same_grid_is_unchanged():
    data = np.zeros((10, 12, 12), dtype=np.uint8)
    data[3:7, 4:8, 3:9] = 2
    data[4:6, 5:7, 5:7] = 1
    vol = LabelVolume.from_array(data, (3.0, 2.0, 2.0), (1.0, 2.0, 3.0))
    out = resample_to_grid(vol, vol.spatial_shape, vol.spacing_zyx)
    assert np.array_equal(out.data, vol.data)
    np.testing.assert_allclose(out.affine, vol.affine)


def test_resampling_keeps_the_heart_where_it_is_in_the_world():
    vol = _blob()
    out = resample_to_grid(vol, (16, 16, 16), (4.0, 3.0, 3.0))
    assert out.spatial_shape == (16, 16, 16)
    np.testing.assert_allclose(out.spacing_zyx, (4.0, 3.0, 3.0))
    # The grid is centred on the heart (within one output voxel) ...
    centre_index = (np.array(out.spatial_shape) - 1) / 2.0
    np.testing.assert_allclose(out.index_to_world(centre_index)[0], heart_centre_xyz(vol), atol=3.0)
    # ... and the heart lands at the same world position (within half an output voxel).
    src = vol.index_to_world(np.argwhere(vol.data > 0)).mean(axis=0)
    dst = out.index_to_world(np.argwhere(out.data > 0)).mean(axis=0)
    np.testing.assert_allclose(dst, src, atol=2.0 + 1e-6)
    assert set(np.unique(out.data)) == {0, 1, 2}


def test_same_spacing_copies_labels_by_whole_voxels():
    vol = _blob()
    out = resample_to_grid(vol, (16, 32, 32), vol.spacing_zyx)
    # Every labelled source voxel appears unchanged at its own world position.
    world = vol.index_to_world(np.argwhere(vol.data > 0))
    index = np.linalg.solve(out.affine, np.c_[world, np.ones(len(world))].T)[:3].T[:, ::-1]
    np.testing.assert_allclose(index, np.round(index), atol=1e-6)
    idx = np.round(index).astype(int)
    assert np.array_equal(out.data[tuple(idx.T)], vol.data[vol.data > 0])


def test_outside_the_source_is_background_and_4d_is_resampled_per_frame():
    vol = _blob()
    seq = LabelVolume(
        data=np.stack([vol.data, np.zeros_like(vol.data)]),
        affine=vol.affine,
        frame_duration_ms=40.0,
    )
    out = resample_to_grid(seq, (32, 64, 64), (4.0, 4.0, 4.0))
    assert out.data.shape == (2, 32, 64, 64)
    assert out.frame_duration_ms == 40.0
    assert out.data[1].max() == 0
    assert out.data[0].max() == 2
    assert out.data[0, 0].max() == 0  # beyond the source field of view


def test_subject_frames_start_at_ed_and_pick_other_cycle_lengths():
    frames = {
        t: LabelVolume.from_array(np.full((2, 2, 2), t % 4, np.uint8), (1, 1, 1)) for t in range(8)
    }
    subject = Subject("s", ed_frame=2, n_frames=8, labels=frames)
    picked = subject_frames(subject, 4)
    assert [int(f.data[0, 0, 0]) for f in picked] == [2 % 4, 4 % 4, 6 % 4, 0]
    missing = Subject("s", ed_frame=0, n_frames=8, labels={0: frames[0], 3: frames[3]})
    with pytest.raises(CardioInputError, match="needs labels for all 8 frames"):
        subject_frames(missing, 4)


def test_build_sequences_and_split():
    subjects = toy_subjects(6, grid=(12, 12, 12), spacing_zyx=(8, 8, 8), n_frames=6, seed=3)
    seqs = build_sequences(subjects, (16, 16, 16), (8, 8, 8), 6)
    assert seqs.labels.shape == (6, 6, 16, 16, 16)
    assert seqs.labels.dtype == np.uint8
    assert seqs.subject_ids[0] == "toy000"
    assert len(seqs.conditions) == 6
    # ED (frame 0) is the largest LV of the toy cycle.
    lv = (seqs.labels == 1).sum(axis=(2, 3, 4))
    assert np.all(lv[:, 0] >= lv.max(axis=1))
    vol = seqs.volume(2)
    assert vol.is_4d
    assert vol.spacing_zyx == pytest.approx((8, 8, 8))
    train, val = seqs.split(0.34, seed=1)
    assert len(train) == 4
    assert len(val) == 2
    assert not set(train.subject_ids) & set(val.subject_ids)
    assert seqs.split(0.34, seed=1)[1].subject_ids == val.subject_ids


def test_subjects_without_conditions_are_rejected():
    subject = toy_subjects(1, n_frames=6)[0]
    subject.conditions = None
    with pytest.raises(CardioInputError, match="has no conditions"):
        build_sequences([subject], (16, 16, 16), (8, 8, 8), 6)
