"""NIfTI reading and writing: geometry, label conventions, 4D timing and bad files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.nifti import (
    label_table_text,
    read_image_volume,
    read_label_volume,
    write_image_volume,
    write_label_table,
    write_label_volume,
)
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

# An oblique affine with a flip: x runs towards -R, spacing 1.5 x 1.25 x 8 mm.
ROTATION = np.array(
    [[-np.cos(0.3), -np.sin(0.3), 0.0], [np.sin(0.3), -np.cos(0.3), 0.0], [0.0, 0.0, 1.0]]
)
AFFINE = np.eye(4)
AFFINE[:3, :3] = ROTATION @ np.diag([1.5, 1.25, 8.0])
AFFINE[:3, 3] = (12.0, -40.5, 7.0)


def _labels(rng: np.random.Generator, shape: tuple[int, ...] = (4, 6, 7)) -> np.ndarray:
    return rng.integers(0, 4, size=shape).astype(np.uint8)


def _save_raw(path: Path, data_xyz: np.ndarray, affine: np.ndarray = AFFINE, **units: str) -> Path:
    image = nib.Nifti1Image(data_xyz, affine)
    if units:
        image.header.set_xyzt_units(units.get("space", "mm"), units.get("time", "unknown"))
    nib.save(image, str(path))
    return path


def test_label_round_trip_keeps_values_axes_and_affine(tmp_path, rng):
    data = _labels(rng)
    vol = LabelVolume(data=data, affine=AFFINE, name="x")
    path = write_label_volume(vol, tmp_path / "lab.nii.gz")
    on_disk = nib.load(str(path))
    assert on_disk.get_data_dtype() == np.uint8
    assert on_disk.shape == (7, 6, 4)  # (x, y, z) on disk
    assert int(on_disk.header["qform_code"]) == 1
    assert int(on_disk.header["sform_code"]) == 1
    np.testing.assert_allclose(on_disk.get_qform(), AFFINE, atol=1e-5)
    back = read_label_volume(path)
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_allclose(back.affine, AFFINE, atol=1e-6)
    assert back.name == "lab"
    assert back.frame_duration_ms is None


def test_disk_axes_are_reversed_in_memory(tmp_path):
    xyz = np.zeros((5, 4, 3), dtype=np.uint8)
    xyz[4, 1, 2] = Label.RV
    vol = read_label_volume(_save_raw(tmp_path / "a.nii.gz", xyz))
    assert vol.data.shape == (3, 4, 5)
    assert vol.data[2, 1, 4] == Label.RV


def test_acdc_labels_are_remapped_both_ways(tmp_path):
    disk = np.array([0, 1, 2, 3], dtype=np.uint8).reshape(4, 1, 1)
    vol = read_label_volume(_save_raw(tmp_path / "acdc.nii.gz", disk), acdc_labels=True)
    assert vol.data.ravel().tolist() == [Label.BACKGROUND, Label.RV, Label.MYO, Label.LV]
    out = write_label_volume(vol, tmp_path / "again.nii.gz", acdc_labels=True)
    assert np.asarray(nib.load(str(out)).dataobj).ravel().tolist() == [0, 1, 2, 3]


def test_float64_integral_labels_are_accepted(tmp_path):
    disk = np.array([[[0.0, 1.0, 2.0, 3.0]]])
    vol = read_label_volume(_save_raw(tmp_path / "f.nii.gz", disk))
    assert vol.data.dtype == np.uint8
    assert sorted(np.unique(vol.data).tolist()) == [0, 1, 2, 3]


def test_4d_labels_time_last_with_frame_duration(tmp_path, rng):
    data = _labels(rng, (5, 3, 4, 6))
    vol = LabelVolume(data=data, affine=AFFINE, frame_duration_ms=42.5)
    path = write_label_volume(vol, tmp_path / "seq.nii.gz")
    header = nib.load(str(path)).header
    assert header.get_data_shape() == (6, 4, 3, 5)
    assert header["pixdim"][4] == pytest.approx(42.5)
    assert header.get_xyzt_units() == ("mm", "msec")
    back = read_label_volume(path)
    np.testing.assert_array_equal(back.data, data)
    assert back.frame_duration_ms == pytest.approx(42.5)
    assert back.n_frames == 5


@pytest.mark.parametrize(
    ("time_unit", "pixdim4", "expected"),
    [("sec", 0.04, 40.0), ("msec", 33.0, 33.0), ("usec", 25000.0, 25.0), ("unknown", 1.0, None)],
)
def test_frame_duration_honours_time_units(tmp_path, time_unit, pixdim4, expected):
    image = nib.Nifti1Image(np.zeros((3, 3, 2, 4), dtype=np.uint8), np.eye(4))
    image.header.set_zooms((1.0, 1.0, 1.0, pixdim4))
    image.header.set_xyzt_units("mm", time_unit)
    nib.save(image, str(tmp_path / "t.nii.gz"))
    vol = read_label_volume(tmp_path / "t.nii.gz")
    if expected is None:
        assert vol.frame_duration_ms is None
    else:
        assert vol.frame_duration_ms == pytest.approx(expected)


def test_spatial_unit_meter_is_converted_to_mm(tmp_path):
    affine = np.diag([0.0015, 0.0015, 0.008, 1.0])
    path = _save_raw(tmp_path / "m.nii.gz", np.zeros((2, 2, 2), np.uint8), affine, space="meter")
    assert read_label_volume(path).spacing_xyz == pytest.approx((1.5, 1.5, 8.0))


def test_single_frame_4d_file_reads_as_3d(tmp_path):
    path = _save_raw(tmp_path / "one.nii.gz", np.zeros((3, 3, 2, 1), np.uint8))
    assert read_label_volume(path, ndim=3).data.shape == (2, 3, 3)


def test_image_round_trip_float32(tmp_path, rng):
    data = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    vol = ImageVolume(data=data, affine=AFFINE, frame_duration_ms=30.0)
    path = write_image_volume(vol, tmp_path / "img.nii")
    assert nib.load(str(path)).get_data_dtype() == np.float32
    back = read_image_volume(path)
    np.testing.assert_array_equal(back.data, data)
    assert back.frame_duration_ms == pytest.approx(30.0)


def test_raw_image_intensities_are_not_rescaled(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4) * 100
    vol = read_image_volume(_save_raw(tmp_path / "raw.nii.gz", data))
    assert vol.data.dtype == np.float32
    assert vol.data.max() == pytest.approx(2300.0)


# bad input ------------------------------------------------------------------------------------
def _message(exc_info: pytest.ExceptionInfo[CardioInputError]) -> str:
    return str(exc_info.value)


def test_missing_file(tmp_path):
    with pytest.raises(CardioInputError, match="file not found") as err:
        read_label_volume(tmp_path / "nope.nii.gz")
    assert "nope.nii.gz" in _message(err)


def test_not_a_nifti(tmp_path):
    bad = tmp_path / "junk.nii.gz"
    bad.write_bytes(b"this is not an image at all")
    with pytest.raises(CardioInputError, match=r"junk\.nii\.gz: .*Not a gzipped file"):
        read_label_volume(bad)
    plain = tmp_path / "junk.nii"
    plain.write_bytes(b"\x00" * 400)
    with pytest.raises(CardioInputError, match=r"junk\.nii: not a NIfTI file"):
        read_label_volume(plain)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(CardioInputError, match="not a NIfTI file"):
        read_image_volume(other)


def test_truncated_gzip_is_a_clear_error(tmp_path, rng):
    vol = ImageVolume(data=rng.normal(size=(6, 20, 20)).astype(np.float32), affine=AFFINE)
    path = write_image_volume(vol, tmp_path / "cut.nii.gz")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(CardioInputError, match=r"cut\.nii\.gz: truncated or corrupt gzip"):
        read_image_volume(path)


def test_truncated_uncompressed_nifti(tmp_path, rng):
    vol = ImageVolume(data=rng.normal(size=(6, 20, 20)).astype(np.float32), affine=AFFINE)
    path = write_image_volume(vol, tmp_path / "cut.nii")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CardioInputError, match=r"cut\.nii: not a readable NIfTI"):
        read_image_volume(path)


def test_gzip_crc_error_is_a_clear_error(tmp_path):
    path = tmp_path / "crc.nii.gz"
    write_label_volume(LabelVolume.from_array(np.ones((2, 3, 4), np.uint8), (8.0, 1.5, 1.5)), path)
    blob = bytearray(path.read_bytes())
    blob[-8] ^= 0xFF  # corrupt the CRC32 in the gzip trailer; the voxels still decompress
    path.write_bytes(bytes(blob))
    with pytest.raises(CardioInputError, match=r"crc\.nii\.gz: .*CRC check failed"):
        read_label_volume(path)


def test_nan_intensities(tmp_path):
    data = np.ones((3, 3, 2), np.float32)
    data[1, 1, 1] = np.nan
    with pytest.raises(CardioInputError, match=r"nan\.nii\.gz: image contains NaN"):
        read_image_volume(_save_raw(tmp_path / "nan.nii.gz", data))


def test_nan_labels(tmp_path):
    data = np.zeros((3, 3, 2))
    data[0, 0, 0] = np.nan
    with pytest.raises(CardioInputError, match=r"lnan\.nii\.gz: labels contain NaN"):
        read_label_volume(_save_raw(tmp_path / "lnan.nii.gz", data))


def test_non_integral_labels(tmp_path):
    data = np.zeros((3, 3, 2))
    data[0, 0, 0] = 1.5
    with pytest.raises(CardioInputError, match="non-integer"):
        read_label_volume(_save_raw(tmp_path / "half.nii.gz", data))


def test_unknown_label_values(tmp_path):
    data = np.zeros((3, 3, 2), np.uint8)
    data[0, 0, 0] = 7
    with pytest.raises(CardioInputError, match=r"seven\.nii\.gz: unknown label values \[7\]"):
        read_label_volume(_save_raw(tmp_path / "seven.nii.gz", data))


def test_2d_file_where_3d_needed(tmp_path):
    path = _save_raw(tmp_path / "flat.nii.gz", np.zeros((4, 4), np.uint8))
    with pytest.raises(CardioInputError, match=r"flat\.nii\.gz: 2D file"):
        read_label_volume(path)


def test_4d_file_where_3d_needed(tmp_path):
    path = _save_raw(tmp_path / "seq.nii.gz", np.zeros((4, 4, 2, 3), np.uint8))
    with pytest.raises(CardioInputError, match="4D file where a 3D volume is needed"):
        read_label_volume(path, ndim=3)


def test_5d_file(tmp_path):
    path = _save_raw(tmp_path / "five.nii.gz", np.zeros((3, 3, 2, 2, 2), np.float32))
    with pytest.raises(CardioInputError, match=r"five\.nii\.gz: 5D file"):
        read_image_volume(path)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    vol = LabelVolume.from_array(np.zeros((2, 2, 2), np.uint8), (1.0, 1.0, 1.0))
    target = tmp_path / "out.nii.gz"

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", boom)
    # one input error naming the file (exit 2 from the CLI), not an OSError traceback
    with pytest.raises(CardioInputError, match=r"out\.nii\.gz: cannot write \(disk full\)"):
        write_label_volume(vol, target)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path, monkeypatch):
    vol = LabelVolume.from_array(np.ones((2, 2, 2), np.uint8), (1.0, 1.0, 1.0))
    target = write_label_volume(vol, tmp_path / "out.nii.gz")
    before = target.read_bytes()
    monkeypatch.setattr(nib, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(CardioInputError, match="full"):
        write_label_volume(vol.with_data(np.zeros((2, 2, 2), np.uint8)), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]


def test_write_refuses_other_suffix(tmp_path):
    vol = LabelVolume.from_array(np.zeros((2, 2, 2), np.uint8), (1.0, 1.0, 1.0))
    with pytest.raises(CardioInputError, match=r"out\.png: output must end in \.nii"):
        write_label_volume(vol, tmp_path / "out.png")


# label tables -------------------------------------------------------------------------------
def _itksnap_rows(text: str) -> dict[int, tuple[tuple[int, int, int], str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        head, name, _ = line.split('"')
        fields = head.split()
        assert len(fields) == 7  # IDX R G B A VIS MSH
        rows[int(fields[0])] = ((int(fields[1]), int(fields[2]), int(fields[3])), name)
    return rows


def test_itksnap_label_table(tmp_path):
    path = write_label_table(tmp_path / "labels.txt")
    rows = _itksnap_rows(path.read_text())
    assert set(rows) == {0, 1, 2, 3}
    assert rows[1][1] == "LV blood pool"
    assert rows[3][1] == "RV blood pool"
    assert rows[1][0] == (220, 60, 60)


def test_acdc_label_table_swaps_lv_and_rv():
    rows = _itksnap_rows(label_table_text(acdc_labels=True))
    assert rows[1][1] == "RV blood pool"
    assert rows[3][1] == "LV blood pool"
    assert rows[2][1] == "LV myocardium"


def test_slicer_color_table(tmp_path):
    text = write_label_table(tmp_path / "labels.ctbl").read_text()
    assert text.startswith("# Color table file")
    data = [line.split() for line in text.splitlines() if not line.startswith("#")]
    assert ["1", "LV_blood_pool", "220", "60", "60", "255"] in data
    assert all(len(row) == 6 for row in data)
