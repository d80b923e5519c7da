"""The header frame (no anatomical rotation, mirror or slice flip) and flip/rotation augmentation,
the two arms measured against the anatomical frame (issue 18, README "frame vs augmentation")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.frame import apex_first, heart_centre, lv_rv_angle
from cardio_explorer.engine.label_vae.prepare import prepare_subjects
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.nn.slices import augment_labels
from cardio_explorer.engine.preprocess import frame_of_checkpoint, preprocess_subject
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume


def _heart(angle_deg: float, apex_last: bool) -> LabelVolume:
    """LV + MYO cone narrowing to the apex, RV at ``angle_deg`` from the LV, off-centre."""
    nz, ny, nx = 10, 110, 120
    z, y, x = np.indices((nz, ny, nx), dtype=float)
    taper = 1.0 - 0.08 * (z if apex_last else nz - 1 - z)
    cy, cx = 48.0, 62.0
    r = np.hypot(y - cy, x - cx)
    data = np.zeros((nz, ny, nx), np.uint8)
    data[r < 18 * taper] = Label.MYO
    data[r < 12 * taper] = Label.LV
    a = np.radians(angle_deg)
    ry, rx = cy + 28 * np.sin(a), cx + 28 * np.cos(a)
    along = (y - ry) * np.sin(a) + (x - rx) * np.cos(a)
    across = -(y - ry) * np.cos(a) + (x - rx) * np.sin(a)
    rv = (along / 8) ** 2 + (across / 20) ** 2 < taper**2
    data[rv & (data == 0)] = Label.RV
    return LabelVolume.from_array(data, (8.0, 1.2, 1.2), (3.0, -7.0, 11.0))


def _prepare(vol: LabelVolume, frame: str) -> Subject:
    return preprocess_subject(Subject("s", "NOR", ed_frame=0, labels={0: vol}), 1.5, 96, frame)


@pytest.mark.parametrize(("angle", "apex_last"), [(37.0, False), (-120.0, True)])
def test_header_frame_keeps_the_header_pose_and_centres_the_heart(angle, apex_last):
    vol = _heart(angle, apex_last)
    header = _prepare(vol, "header")
    out = header.labels[0]
    # neither turned nor slice-flipped nor mirrored: the angle and slice order stay as read
    assert lv_rv_angle(out) == pytest.approx(angle, abs=2.0)
    assert apex_first(out) is not apex_last
    assert np.sign(np.linalg.det(out.affine[:3, :3])) == np.sign(np.linalg.det(vol.affine[:3, :3]))
    np.testing.assert_allclose(out.affine[:3, :3], np.diag([1.5, 1.5, 8.0]), atol=1e-9)
    # resampled and cropped around the heart all the same
    assert out.spatial_shape == (10, 96, 96)
    assert heart_centre(out) == pytest.approx((47.5, 47.5), abs=1.0)
    ml = [np.count_nonzero(v.data == Label.LV) * v.voxel_volume_ml for v in (vol, out)]
    assert ml[1] == pytest.approx(ml[0], rel=0.03)
    info = header.info["preprocess"]["frame"]
    assert info["kind"] == "header"
    assert info["rotation_deg"] == 0.0
    assert not info["flip_slices"]
    assert not info["mirror"]
    # the anatomical frame does turn the same heart (LV -> RV along -x, base first)
    anatomical = _prepare(vol, "anatomical")
    assert abs(lv_rv_angle(anatomical.labels[0])) == pytest.approx(180.0, abs=2.0)
    assert not apex_first(anatomical.labels[0])
    assert anatomical.info["preprocess"]["frame"]["kind"] == "anatomical"


def test_unknown_frame_is_one_clear_error():
    with pytest.raises(CardioInputError, match="frame: must be one of"):
        _prepare(_heart(0.0, True), "scanner")
    with pytest.raises(CardioInputError, match="checkpoint grid frame"):
        frame_of_checkpoint({"grid": {"frame": "sideways"}})
    assert frame_of_checkpoint({}) == "anatomical"  # checkpoints from before the option
    assert frame_of_checkpoint({"grid": {"frame": "header"}}) == "header"


def test_training_subjects_are_prepared_again_for_another_frame():
    subject = Subject("s", "NOR", ed_frame=0, labels={0: _heart(60.0, True)})
    header = prepare_subjects([subject], 96, 1.5, "header")[0]
    assert prepare_subjects([header], 96, 1.5, "header")[0] is header  # not done twice
    assert lv_rv_angle(header.labels[0]) == pytest.approx(60.0, abs=2.0)
    again = prepare_subjects([header], 96, 1.5, "anatomical")[0]
    assert again.info["preprocess"]["frame"]["kind"] == "anatomical"
    assert abs(lv_rv_angle(again.labels[0])) == pytest.approx(180.0, abs=2.0)


def _asymmetric(batch: int) -> torch.Tensor:
    """A batch of one slice with no mirror symmetry (an L of labels 1 and 2 off-centre)."""
    one = torch.zeros(32, 32, dtype=torch.uint8)
    one[4:20, 6:10] = 1
    one[16:20, 10:22] = 2
    return one.expand(batch, 32, 32).clone()


def test_flips_happen_and_follow_the_seed():
    labels = _asymmetric(64)
    flipped = augment_labels(labels, torch.Generator().manual_seed(3), 0.0, 0.0, flip=True)
    one = labels[0]
    poses = [one, one.flip(-1), one.flip(-2), one.flip(-1).flip(-2)]
    seen = [next(i for i, p in enumerate(poses) if torch.equal(s, p)) for s in flipped]
    assert set(seen) == {0, 1, 2, 3}  # every mirror (and none) occurs in 64 slices
    same = augment_labels(labels, torch.Generator().manual_seed(3), 0.0, 0.0, flip=True)
    assert torch.equal(flipped, same)
    other = augment_labels(labels, torch.Generator().manual_seed(4), 0.0, 0.0, flip=True)
    assert not torch.equal(flipped, other)
    unflipped = augment_labels(labels, torch.Generator().manual_seed(3), 0.0, 0.0, flip=False)
    assert torch.equal(unflipped, labels)


def test_without_flip_the_random_draws_are_those_of_before():
    labels = _asymmetric(8)
    a = augment_labels(labels, torch.Generator().manual_seed(9), 10.0, 4.0)
    b = augment_labels(labels, torch.Generator().manual_seed(9), 10.0, 4.0, flip=False)
    assert torch.equal(a, b)


def _angle(slice_: torch.Tensor) -> float:
    """Angle (degrees) of the label-2 centroid about the label-1 centroid."""
    c1, c2 = (torch.nonzero(slice_ == v).float().mean(0) for v in (1, 2))
    dy, dx = (c2 - c1).tolist()
    return math.degrees(math.atan2(dy, dx))


def test_full_rotation_reaches_every_angle_and_small_stays_small():
    labels = _asymmetric(200)
    rest = _angle(labels[0])
    turn = [
        (_angle(s) - rest + 180) % 360 - 180
        for s in augment_labels(labels, torch.Generator().manual_seed(1), 180.0, 0.0)
    ]
    assert min(turn) < -150
    assert max(turn) > 150
    small = [
        (_angle(s) - rest + 180) % 360 - 180
        for s in augment_labels(labels, torch.Generator().manual_seed(1), 10.0, 0.0)
    ]
    assert max(abs(t) for t in small) < 15
