"""ACDC layout: Info.cfg parsing and writing, subject folders, frame conventions, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.acdc import read_acdc_subject, read_info_cfg, write_info_cfg
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

SPACING = (10.0, 1.5, 1.25)  # (z, y, x) mm
N_FRAMES = 6


def _heart(t: int) -> np.ndarray:
    """(z, y, x) labels: an LV box shrinking with t, a MYO rim, an RV box beside it."""
    data = np.zeros((3, 16, 16), np.uint8)
    r = 5 - min(t, 3)
    data[:, 8 - r - 1 : 8 + r + 1, 3 : 3 + 2 * r + 2] = Label.MYO
    data[:, 8 - r : 8 + r, 4 : 4 + 2 * r] = Label.LV
    data[:, 2:5, 12:15] = Label.RV
    return data


def make_acdc_subject(
    root: Path,
    sid: str = "patient001",
    *,
    ed: int = 1,
    es: int = 4,
    group: str = "RV",
    extra: dict | None = None,
    with_4d_gt: bool = False,
    n_frames_on_disk: int = N_FRAMES,
) -> Path:
    """An ACDC-layout folder with ACDC label values on disk (1 RV, 2 MYO, 3 LV)."""
    folder = root / sid
    folder.mkdir(parents=True)
    info = {"ED": ed, "ES": es, "Group": group, "Height": 180.0, "Weight": 80.0}
    info["NbFrame"] = N_FRAMES
    info.update(extra or {})
    write_info_cfg(folder / "Info.cfg", info)
    seq = np.stack([_heart(t) for t in range(n_frames_on_disk)])
    labels = LabelVolume.from_array(seq, SPACING, (5.0, -3.0, 2.0), frame_duration_ms=40.0)
    images = ImageVolume(data=seq.astype(np.float32) * 100.0, affine=labels.affine)
    for frame1 in {ed, es}:
        t = frame1 - 1
        write_label_volume(
            labels.frame(t), folder / f"{sid}_frame{frame1:02d}_gt.nii.gz", acdc_labels=True
        )
        write_image_volume(images.frame(t), folder / f"{sid}_frame{frame1:02d}.nii.gz")
    write_image_volume(images, folder / f"{sid}_4d.nii.gz")
    if with_4d_gt:
        write_label_volume(labels, folder / f"{sid}_4d_gt.nii.gz", acdc_labels=True)
    return folder


# Info.cfg -----------------------------------------------------------------------------------
def test_info_cfg_round_trip(tmp_path):
    path = tmp_path / "Info.cfg"
    info = {"ED": 1, "ES": 12, "Group": "ARV", "Height": 184.0, "Weight": 95.5, "NbFrame": 30}
    info |= {"Age": 54.0, "Sex": "F", "SBP": 128.0}
    write_info_cfg(path, info)
    text = path.read_text()
    assert "Group: RV" in text.splitlines()
    back = read_info_cfg(path)
    assert back == {**info, "Group": "RV"}
    assert isinstance(back["ED"], int)
    assert isinstance(back["NbFrame"], int)


def test_real_acdc_info_cfg_text(tmp_path):
    path = tmp_path / "Info.cfg"
    path.write_text("ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n")
    info = read_info_cfg(path)
    assert info == {
        "ED": 1,
        "ES": 12,
        "Group": "DCM",
        "Height": 184.0,
        "NbFrame": 30,
        "Weight": 95.0,
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ED: 1\nES: 12\nGroup: DCM\nHeight: 184\nWeight: 95\n", "missing NbFrame"),
        (
            "ED: one\nES: 12\nGroup: DCM\nHeight: 184\nNbFrame: 30\nWeight: 95\n",
            "ED is not a number",
        ),
        ("ED: 1\nES: 12.5\nGroup: DCM\nHeight: 184\nNbFrame: 30\nWeight: 95\n", "whole number"),
        (
            "ED: 1\nES: 31\nGroup: DCM\nHeight: 184\nNbFrame: 30\nWeight: 95\n",
            "outside frames 1..30",
        ),
        ("ED: 0\nES: 3\nGroup: DCM\nHeight: 184\nNbFrame: 30\nWeight: 95\n", "1-based"),
        ("ED: 1\nES: 3\nGroup: DCM\nHeight: -4\nNbFrame: 30\nWeight: 95\n", "Height must be"),
        ("ED 1\nES: 3\n", "not 'Key: value'"),
        ("ED: 1\nED: 2\n", "appears twice"),
    ],
)
def test_malformed_info_cfg(tmp_path, text, problem):
    path = tmp_path / "Info.cfg"
    path.write_text(text)
    with pytest.raises(CardioInputError, match=r"Info\.cfg: ") as err:
        read_info_cfg(path)
    assert problem in str(err.value)


def test_missing_info_cfg(tmp_path):
    with pytest.raises(CardioInputError, match=r"Info\.cfg: Info\.cfg not found"):
        read_info_cfg(tmp_path / "Info.cfg")


def test_write_info_cfg_requires_keys_and_writes_nothing(tmp_path):
    with pytest.raises(CardioInputError, match="without NbFrame"):
        write_info_cfg(
            tmp_path / "Info.cfg", {"ED": 1, "ES": 2, "Group": "NOR", "Height": 1, "Weight": 2}
        )
    assert list(tmp_path.iterdir()) == []


# subjects -----------------------------------------------------------------------------------
def test_read_subject_ed_es(tmp_path):
    folder = make_acdc_subject(tmp_path)
    subject = read_acdc_subject(folder)
    assert subject.subject_id == "patient001"
    assert subject.group == "ARV"
    assert (subject.ed_frame, subject.es_frame, subject.n_frames) == (0, 3, N_FRAMES)
    assert sorted(subject.labels) == [0, 3]
    np.testing.assert_array_equal(subject.ed_labels.data, _heart(0))  # remapped to internal
    np.testing.assert_array_equal(subject.es_labels.data, _heart(3))
    assert subject.ed_labels.spacing_zyx == pytest.approx(SPACING)
    assert subject.ed_labels.origin_xyz == pytest.approx((5.0, -3.0, 2.0))
    assert subject.conditions is None  # ACDC gives no age, sex or SBP
    assert subject.info["height"] == 180.0
    assert subject.images == {}
    assert subject.source == folder


def test_read_subject_with_images_and_conditions(tmp_path):
    extra = {"Age": 61, "Sex": "M", "SBP": 135}
    folder = make_acdc_subject(tmp_path, group="HCM", extra=extra)
    subject = read_acdc_subject(folder, images=True)
    assert subject.group == "HCM"
    assert subject.conditions is not None
    assert subject.conditions.sex == "M"
    assert subject.conditions.bsa == pytest.approx(np.sqrt(180 * 80 / 3600))
    assert sorted(subject.images) == [0, 3]
    assert subject.images[3].data.max() == pytest.approx(300.0)


def test_read_subject_all_frames_from_4d(tmp_path):
    folder = make_acdc_subject(tmp_path, with_4d_gt=True)
    subject = read_acdc_subject(folder, frames="all", images=True)
    assert sorted(subject.labels) == list(range(N_FRAMES))
    assert sorted(subject.images) == list(range(N_FRAMES))
    for t in range(N_FRAMES):
        np.testing.assert_array_equal(subject.labels[t].data, _heart(t))
        assert subject.labels[t].data.ndim == 3


def test_all_frames_without_4d_labels_gives_labelled_frames_only(tmp_path):
    subject = read_acdc_subject(make_acdc_subject(tmp_path), frames="all", images=True)
    assert sorted(subject.labels) == [0, 3]
    assert len(subject.images) == N_FRAMES


def test_ed_equal_es_reads_one_frame(tmp_path):
    subject = read_acdc_subject(make_acdc_subject(tmp_path, ed=2, es=2))
    assert sorted(subject.labels) == [1]


def test_frame_count_mismatch(tmp_path):
    folder = make_acdc_subject(tmp_path, n_frames_on_disk=N_FRAMES - 1)
    with pytest.raises(
        CardioInputError,
        match=r"patient001_4d\.nii\.gz: has 5 frames but Info\.cfg says NbFrame = 6",
    ):
        read_acdc_subject(folder)


def test_missing_label_file(tmp_path):
    folder = make_acdc_subject(tmp_path)
    (folder / "patient001_frame04_gt.nii.gz").unlink()
    with pytest.raises(
        CardioInputError, match=r"patient001_frame04_gt\.nii\.gz: label file not found"
    ):
        read_acdc_subject(folder)


def test_unknown_group(tmp_path):
    folder = make_acdc_subject(tmp_path, group="XYZ")
    with pytest.raises(CardioInputError, match=r"Info\.cfg: unknown Group 'XYZ'"):
        read_acdc_subject(folder)


def test_grid_mismatch_between_frames(tmp_path):
    folder = make_acdc_subject(tmp_path)
    moved = LabelVolume.from_array(_heart(3), (10.0, 1.5, 1.5))
    write_label_volume(moved, folder / "patient001_frame04_gt.nii.gz", acdc_labels=True)
    with pytest.raises(CardioInputError, match="different voxel grid"):
        read_acdc_subject(folder)


def test_bad_frames_argument(tmp_path):
    with pytest.raises(CardioInputError, match="frames"):
        read_acdc_subject(make_acdc_subject(tmp_path), frames="some")  # type: ignore[arg-type]
