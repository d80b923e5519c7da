"""Exports read back with an independent reader (SimpleITK): geometry, values and timing."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

sitk = pytest.importorskip("SimpleITK")

# Oblique short-axis-like geometry: rotated about two axes, anisotropic spacing.
_A, _B = 0.4, -0.25
_RZ = np.array([[np.cos(_A), -np.sin(_A), 0], [np.sin(_A), np.cos(_A), 0], [0, 0, 1]])
_RX = np.array([[1, 0, 0], [0, np.cos(_B), -np.sin(_B)], [0, np.sin(_B), np.cos(_B)]])
DIRECTION_RAS = _RZ @ _RX
SPACING_XYZ = (1.25, 1.5, 8.0)
ORIGIN_RAS = (-30.0, 12.5, 44.0)
AFFINE = np.eye(4)
AFFINE[:3, :3] = DIRECTION_RAS @ np.diag(SPACING_XYZ)
AFFINE[:3, 3] = ORIGIN_RAS
LPS = np.diag([-1.0, -1.0, 1.0])  # RAS -> LPS flips x and y


def _check_geometry(image, n_dims: int) -> None:
    spacing = image.GetSpacing()
    assert spacing[:3] == pytest.approx(SPACING_XYZ, rel=1e-6)
    assert image.GetOrigin()[:3] == pytest.approx(tuple(LPS @ np.asarray(ORIGIN_RAS)), abs=1e-4)
    direction = np.asarray(image.GetDirection()).reshape(n_dims, n_dims)[:3, :3]
    np.testing.assert_allclose(direction, LPS @ DIRECTION_RAS, atol=1e-5)


def test_3d_labels_read_by_simpleitk(tmp_path, rng):
    data = rng.integers(0, 4, size=(5, 9, 11)).astype(np.uint8)
    path = write_label_volume(LabelVolume(data=data, affine=AFFINE), tmp_path / "l.nii.gz")
    image = sitk.ReadImage(str(path))
    assert image.GetDimension() == 3
    assert image.GetPixelID() == sitk.sitkUInt8
    _check_geometry(image, 3)
    # SimpleITK arrays are (z, y, x), the same order as ours.
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), data)


def test_acdc_export_values_seen_by_simpleitk(tmp_path):
    data = np.array([0, 1, 2, 3], np.uint8).reshape(1, 1, 4)
    path = write_label_volume(
        LabelVolume(data=data, affine=AFFINE), tmp_path / "a.nii.gz", acdc_labels=True
    )
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(path))).ravel().tolist() == [0, 3, 2, 1]


def test_4d_labels_read_by_simpleitk(tmp_path, rng):
    data = rng.integers(0, 4, size=(4, 3, 6, 7)).astype(np.uint8)
    vol = LabelVolume(data=data, affine=AFFINE, frame_duration_ms=37.5)
    image = sitk.ReadImage(str(write_label_volume(vol, tmp_path / "seq.nii.gz")))
    assert image.GetDimension() == 4
    assert image.GetSize() == (7, 6, 3, 4)
    # pixdim[4] = 37.5 with unit msec; ITK converts time spacing to seconds.
    assert image.GetSpacing()[3] == pytest.approx(0.0375)
    _check_geometry(image, 4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), data)


def test_3d_and_4d_images_read_by_simpleitk(tmp_path, rng):
    data = rng.uniform(-1, 1, size=(2, 3, 6, 7)).astype(np.float32)
    vol = ImageVolume(data=data, affine=AFFINE, frame_duration_ms=25.0)
    image = sitk.ReadImage(str(write_image_volume(vol, tmp_path / "img.nii.gz")))
    assert image.GetPixelID() == sitk.sitkFloat32
    assert image.GetSpacing()[3] == pytest.approx(0.025)  # seconds in ITK
    _check_geometry(image, 4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), data)
    frame = sitk.ReadImage(str(write_image_volume(vol.frame(1), tmp_path / "f.nii")))
    _check_geometry(frame, 3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(frame), data[1])


def test_world_position_of_a_voxel_agrees_with_simpleitk(tmp_path):
    data = np.zeros((5, 9, 11), np.uint8)
    data[3, 7, 2] = 1
    vol = LabelVolume(data=data, affine=AFFINE)
    image = sitk.ReadImage(str(write_label_volume(vol, tmp_path / "p.nii.gz")))
    lps = image.TransformIndexToPhysicalPoint((2, 7, 3))  # SimpleITK index is (x, y, z)
    ras = vol.index_to_world(np.array([3, 7, 2]))[0]
    np.testing.assert_allclose(LPS @ np.asarray(lps), ras, atol=1e-4)


def test_quantised_image_reads_back_within_int16_step_in_simpleitk(tmp_path):
    rng = np.random.default_rng(5)
    data = np.clip(rng.normal(0, 0.5, (3, 6, 16, 16)), -1, 1).astype(np.float32)
    vol = ImageVolume.from_array(data, (8.0, 1.5, 1.5), frame_duration_ms=40.0)
    path = write_image_volume(vol, tmp_path / "q.nii.gz", quantise=True)
    assert nib.load(path).get_data_dtype() == np.int16
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert np.abs(back - data).max() < 1.0 / 32767 + 1e-6


def test_quantising_an_unnormalised_image_is_refused_and_writes_nothing(tmp_path):
    vol = ImageVolume.from_array(np.full((2, 4, 4), 3.0, np.float32), (8.0, 1.5, 1.5))
    with pytest.raises(CardioInputError, match=r"\[-1, 1\]"):
        write_image_volume(vol, tmp_path / "q.nii.gz", quantise=True)
    assert list(tmp_path.iterdir()) == []
