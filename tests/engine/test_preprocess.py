"""Preprocessing keeps geometry right: world positions, volumes, the heart inside the crop."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError, CardioWarning
from cardio_explorer.engine.frame import heart_centre
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.preprocess import (
    canonical_transform,
    crop_or_pad,
    normalise_intensity,
    preprocess_subject,
    resample_inplane,
    slice_axis,
    to_canonical_orientation,
)
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import ImageVolume, LabelVolume


def _ellipsoid_labels(
    shape=(8, 90, 110), centre=(3.5, 44.0, 45.0), radii=(3.0, 20.0, 26.0), spacing=(8.0, 1.2, 0.9)
) -> LabelVolume:
    """LV ellipsoid with a MYO shell and an RV blob, on an axis-aligned grid."""
    z, y, x = np.indices(shape, dtype=float)
    d = ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
    d = d + ((x - centre[2]) / radii[2]) ** 2
    data = np.zeros(shape, np.uint8)
    data[d < 1.6] = Label.MYO
    data[d < 1.0] = Label.LV
    rv = ((y - centre[1]) / 22) ** 2 + ((x - centre[2] - 45) / 14) ** 2 < 1
    data[rv & (data == 0) & (np.abs(z - centre[0]) < 3)] = Label.RV
    return LabelVolume.from_array(data, spacing, (10.0, -20.0, 5.0))


def _oblique(vol: LabelVolume, order_xyz: tuple[int, int, int], flips: tuple[int, ...]):
    """The same voxels stored with permuted / flipped index axes and a matching affine."""
    xyz = vol.data.transpose(2, 1, 0)
    perm = np.transpose(xyz, order_xyz)
    affine = vol.affine.copy()
    new_affine = np.eye(4)
    for new_axis, old_axis in enumerate(order_xyz):
        new_affine[:3, new_axis] = affine[:3, old_axis]
    new_affine[:3, 3] = affine[:3, 3]
    for axis, flip in enumerate(flips):
        if flip < 0:
            n = perm.shape[axis]
            perm = np.flip(perm, axis)
            new_affine[:3, 3] += new_affine[:3, axis] * (n - 1)
            new_affine[:3, axis] *= -1
    return LabelVolume(data=np.ascontiguousarray(perm.transpose(2, 1, 0)), affine=new_affine)


def _world_centroids(vol: LabelVolume) -> np.ndarray:
    return np.array([vol.index_to_world(np.argwhere(vol.data == k)).mean(0) for k in (1, 2, 3)])


def _volumes(vol: LabelVolume) -> np.ndarray:
    return np.array([np.count_nonzero(vol.data == k) * vol.voxel_volume_ml for k in (1, 2, 3)])


def test_canonical_orientation_undoes_permutation_and_flips():
    ref = _ellipsoid_labels()
    scrambled = _oblique(ref, (2, 0, 1), (-1, 1, -1))  # slices now along index x, two flips
    assert slice_axis(scrambled) == 0
    canon = to_canonical_orientation(scrambled)
    np.testing.assert_array_equal(canon.data, ref.data)
    np.testing.assert_allclose(canon.affine, ref.affine, atol=1e-9)


def test_canonical_orientation_keeps_world_positions_and_volumes():
    scrambled = _oblique(_ellipsoid_labels(), (1, 2, 0), (1, -1, -1))
    canon = to_canonical_orientation(scrambled)
    assert canon.spacing_zyx[0] == pytest.approx(8.0)  # slices along z
    np.testing.assert_allclose(_world_centroids(canon), _world_centroids(scrambled), atol=1e-9)
    np.testing.assert_array_equal(_volumes(canon), _volumes(scrambled))


def test_canonical_orientation_of_an_oblique_affine_is_a_permutation_only():
    ref = _ellipsoid_labels()
    angle = 0.5
    rot = np.array(
        [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    )
    affine = ref.affine.copy()
    affine[:3, :3] = rot @ affine[:3, :3]
    vol = _oblique(LabelVolume(data=ref.data, affine=affine), (0, 1, 2), (-1, 1, 1))
    canon = to_canonical_orientation(vol)
    assert canon.spatial_shape == vol.spatial_shape
    np.testing.assert_allclose(_world_centroids(canon), _world_centroids(vol), atol=1e-9)
    transform = canonical_transform(canon)
    np.testing.assert_array_equal(transform, [[0, 1], [1, 1], [2, 1]])  # idempotent


def test_canonical_orientation_4d():
    ref = _ellipsoid_labels()
    seq = ref.with_data(np.stack([ref.data, np.zeros_like(ref.data)]))
    flipped = LabelVolume(
        data=seq.data[:, :, ::-1, :].copy(),
        affine=seq.affine
        @ np.array(
            [[1, 0, 0, 0], [0, -1, 0, ref.spatial_shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1.0]]
        ),
        frame_duration_ms=30.0,
    )
    canon = to_canonical_orientation(flipped)
    np.testing.assert_array_equal(canon.data, seq.data)
    assert canon.frame_duration_ms == 30.0


def test_resample_inplane_spacing_geometry_and_volume():
    vol = _ellipsoid_labels()
    out = resample_inplane(vol, 1.5)
    assert out.spacing_zyx == pytest.approx((8.0, 1.5, 1.5))
    assert out.spatial_shape == (8, round(90 * 1.2 / 1.5), round(110 * 0.9 / 1.5))
    # the field of view keeps its first edge: corner of voxel 0 unchanged in world space
    corner_old = vol.affine @ np.array([-0.5, -0.5, 0, 1])
    corner_new = out.affine @ np.array([-0.5, -0.5, 0, 1])
    np.testing.assert_allclose(corner_new, corner_old, atol=1e-9)
    np.testing.assert_allclose(_volumes(out), _volumes(vol), rtol=0.03)
    np.testing.assert_allclose(_world_centroids(out), _world_centroids(vol), atol=0.5)
    assert set(np.unique(out.data)) <= {0, 1, 2, 3}


def test_resample_image_linear_through_plane_untouched(rng):
    levels = rng.normal(size=3).astype(np.float32)
    data = np.broadcast_to(levels[:, None, None], (3, 20, 30)).copy()
    out = resample_inplane(ImageVolume.from_array(data, (7.0, 1.0, 1.0)), 0.5)
    assert out.data.dtype == np.float32
    assert out.spatial_shape == (3, 40, 60)
    assert out.spacing_zyx == pytest.approx((7.0, 0.5, 0.5))
    for z in range(3):
        np.testing.assert_allclose(out.data[z], levels[z], rtol=1e-6)


def test_resample_linear_reproduces_a_ramp():
    y, x = np.indices((16, 24), dtype=np.float32)
    ramp = np.broadcast_to(2.0 * x + 3.0 * y, (2, 16, 24)).copy()
    img = ImageVolume.from_array(ramp, (5.0, 1.0, 1.0))
    out = resample_inplane(img, 0.5)
    world = out.index_to_world(np.argwhere(np.ones(out.spatial_shape, bool)))
    expected = 2.0 * world[:, 0] + 3.0 * world[:, 1]
    inner = (world[:, 0] > 0) & (world[:, 0] < 23) & (world[:, 1] > 0) & (world[:, 1] < 15)
    np.testing.assert_allclose(out.data.ravel()[inner], expected[inner], atol=1e-4)


def test_resample_rejects_bad_spacing():
    with pytest.raises(CardioInputError, match="spacing_mm"):
        resample_inplane(_ellipsoid_labels(), 0.0)


def test_crop_or_pad_centres_heart_and_moves_origin():
    vol = _ellipsoid_labels()
    out = crop_or_pad(vol, 96)
    assert out.spatial_shape == (8, 96, 96)
    np.testing.assert_array_equal(_volumes(out), _volumes(vol))
    np.testing.assert_allclose(_world_centroids(out), _world_centroids(vol), atol=1e-9)
    cy, cx = heart_centre(out)
    assert abs(cy - 47.5) <= 0.5
    assert abs(cx - 47.5) <= 0.5


def test_crop_or_pad_pads_small_grids():
    vol = _ellipsoid_labels()
    out = crop_or_pad(vol, 128)
    assert out.spatial_shape == (8, 128, 128)
    np.testing.assert_array_equal(_volumes(out), _volumes(vol))
    np.testing.assert_allclose(_world_centroids(out), _world_centroids(vol), atol=1e-9)
    img = ImageVolume(data=np.ones(vol.data.shape, np.float32) * 5, affine=vol.affine)
    padded = crop_or_pad(img, 128, centre=heart_centre(vol))
    assert padded.data.min() == 0.0  # default image fill: min(data, 0)
    assert np.count_nonzero(padded.data == 5) == img.data.size


def test_normalise_intensity(rng):
    data = rng.normal(100, 20, size=(4, 30, 30)).astype(np.float32)
    out = normalise_intensity(ImageVolume.from_array(data, (8.0, 1.0, 1.0)))
    assert out.data.min() == pytest.approx(-1.0)
    assert out.data.max() == pytest.approx(1.0)
    assert np.mean(out.data >= 1.0 - 1e-6) == pytest.approx(0.01, abs=0.002)
    const = normalise_intensity(ImageVolume.from_array(np.ones((2, 3, 3)), (1.0, 1.0, 1.0)))
    assert np.all(const.data == 0)
    with pytest.raises(CardioInputError, match="percentiles"):
        normalise_intensity(out, (50, 10))


def _subject(vol: LabelVolume, images: bool = True) -> Subject:
    es = vol.with_data(np.where(vol.data == Label.LV, Label.MYO, vol.data).astype(np.uint8))
    imgs = {}
    if images:
        imgs = {
            t: ImageVolume(data=v.data.astype(np.float32) * 50 + 7, affine=v.affine)
            for t, v in ((0, vol), (4, es))
        }
    return Subject(
        "s1", "NOR", ed_frame=0, es_frame=4, n_frames=10, labels={0: vol, 4: es}, images=imgs
    )


def test_preprocess_subject_same_crop_for_all_frames():
    scrambled = _oblique(_ellipsoid_labels(), (1, 0, 2), (-1, 1, 1))
    subject = _subject(scrambled)
    out = preprocess_subject(subject, spacing_mm=1.5, size=96)
    vols = [*out.labels.values(), *out.images.values()]
    assert all(v.spatial_shape == (8, 96, 96) for v in vols)
    assert all(v.same_grid(vols[0]) for v in vols)
    assert vols[0].spacing_zyx == pytest.approx((8.0, 1.5, 1.5))
    for t in (0, 4):
        np.testing.assert_allclose(_volumes(out.labels[t]), _volumes(subject.labels[t]), rtol=0.03)
    assert out.images[0].data.min() >= -1.0
    assert out.images[0].data.max() <= 1.0
    assert out.info["preprocess"]["size"] == 96
    assert subject.labels[0] is scrambled  # the input subject is not changed


def test_preprocess_warns_when_the_crop_cuts_the_heart():
    with pytest.warns(CardioWarning, match="cuts off"):
        preprocess_subject(_subject(_ellipsoid_labels(), images=False), spacing_mm=1.5, size=8)
