"""M&Ms reader: release layout (4D files + info CSV) and flat ED/ES layout, made in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.mnms import (
    find_mnms_info,
    read_mnms_cohort,
    read_mnms_info,
    read_mnms_subject,
)
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

SPACING = (10.0, 1.25, 1.25)
N_FRAMES = 8
CSV_HEADER = "External code,VendorName,Vendor,Centre,ED,ES,Pathology,Age,Sex,Height,Weight\n"


def _frame(lv_half: int) -> np.ndarray:
    """(z, y, x) labels: LV square of half-width lv_half, a 1-voxel MYO rim, a fixed RV."""
    data = np.zeros((4, 24, 24), np.uint8)
    data[:, 10 - lv_half - 1 : 10 + lv_half + 1, 6 - 1 : 6 + 2 * lv_half + 1] = Label.MYO
    data[:, 10 - lv_half : 10 + lv_half, 6 : 6 + 2 * lv_half] = Label.LV
    data[:, 3:8, 18:22] = Label.RV
    return data


def _sequence(ed: int, es: int) -> np.ndarray:
    """M&Ms-like 4D labels: only ED and ES are labelled, every other frame is empty."""
    seq = np.zeros((N_FRAMES, 4, 24, 24), np.uint8)
    seq[ed] = _frame(5)
    seq[es] = _frame(3)
    return seq


def make_release(root: Path, rows: list[tuple[str, int, int, str]]) -> Path:
    """root/Training/Labeled/<code>/<code>_sa[_gt].nii.gz plus the information CSV in root."""
    lines = [CSV_HEADER]
    for code, ed, es, pathology in rows:
        folder = root / "Training" / "Labeled" / code
        folder.mkdir(parents=True)
        labels = LabelVolume.from_array(_sequence(ed, es), SPACING, frame_duration_ms=30.0)
        write_label_volume(labels, folder / f"{code}_sa_gt.nii.gz")
        images = ImageVolume(data=np.ones(labels.data.shape, np.float32), affine=labels.affine)
        write_image_volume(images, folder / f"{code}_sa.nii.gz")
        lines.append(f"{code},Siemens,A,1,{ed},{es},{pathology},45,M,178,82\n")
    (root / "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv").write_text("".join(lines))
    return root


def test_read_info_csv_tolerant_columns(tmp_path):
    path = tmp_path / "info.csv"
    path.write_text(
        "external_code; Vendor Name ;ED;ES;PATHOLOGY;Age;Sex;Height;Weight\n"
        "A1B2C3;Philips;0;9;HHD;61;F;;70\n"
    )
    table = read_mnms_info(path)
    row = table["A1B2C3"]
    assert (row.ed, row.es, row.pathology, row.sex) == (0, 9, "HHD", "F")
    assert row.height is None
    assert row.weight == 70.0
    assert row.vendor_name == "Philips"


def test_release_layout_subject(tmp_path):
    root = make_release(tmp_path, [("A0S9V9", 0, 3, "HCM")])
    assert find_mnms_info(root / "Training" / "Labeled").name.startswith("211230")
    [subject] = read_mnms_cohort(root / "Training" / "Labeled")
    assert subject.subject_id == "A0S9V9"
    assert (subject.ed_frame, subject.es_frame, subject.n_frames) == (0, 3, N_FRAMES)
    assert subject.group == "HCM"
    assert subject.conditions is None  # M&Ms has no SBP
    assert subject.info["age"] == 45.0
    assert subject.info["vendor"] == "A"
    np.testing.assert_array_equal(subject.ed_labels.data, _frame(5))  # no remapping
    np.testing.assert_array_equal(subject.es_labels.data, _frame(3))
    assert subject.ed_labels.spacing_zyx == pytest.approx(SPACING)
    voxel_ml = 10 * 1.25 * 1.25 / 1000
    ph = measure_phenotypes(subject.ed_labels, subject.es_labels)
    assert ph.lvedv_ml == pytest.approx(4 * 10 * 10 * voxel_ml)
    assert ph.lvesv_ml == pytest.approx(4 * 6 * 6 * voxel_ml)
    assert ph.rvedv_ml == pytest.approx(4 * 5 * 4 * voxel_ml)


def test_release_layout_all_frames_and_images(tmp_path):
    root = make_release(tmp_path, [("B1", 2, 6, "XYZ")])
    subject = read_mnms_cohort(root, frames="all", images=True)[0]
    assert sorted(subject.labels) == [2, 6]  # only ED and ES are labelled in M&Ms
    assert sorted(subject.images) == list(range(N_FRAMES))
    assert subject.group is None  # unknown pathology code
    assert subject.info["pathology"] == "XYZ"


def test_release_without_csv_guesses_ed_es(tmp_path):
    root = make_release(tmp_path, [("C1", 5, 1, "NOR")])
    (root / "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv").unlink()
    subject = read_mnms_cohort(root)[0]
    assert (subject.ed_frame, subject.es_frame) == (5, 1)  # ED: the larger LV
    assert subject.group is None


def test_csv_frame_without_labels_is_an_error(tmp_path):
    root = make_release(tmp_path, [("D1", 0, 3, "NOR")])
    csv = root / "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv"
    csv.write_text(CSV_HEADER + "D1,Siemens,A,1,0,4,NOR,45,M,178,82\n")
    with pytest.raises(CardioInputError, match=r"D1_sa_gt\.nii\.gz: ES frame 4 .* has no labels"):
        read_mnms_cohort(root)
    csv.write_text(CSV_HEADER + "D1,Siemens,A,1,0,12,NOR,45,M,178,82\n")
    with pytest.raises(CardioInputError, match="file has 8 frames"):
        read_mnms_cohort(root)


def test_flat_layout(tmp_path):
    for phase, half in (("ED", 5), ("ES", 3)):
        vol = LabelVolume.from_array(_frame(half).astype(np.float64), SPACING)
        write_label_volume(vol, tmp_path / f"E5F6_sa_{phase}_gt.nii.gz")
    subject = read_mnms_subject(tmp_path, "E5F6")
    assert (subject.ed_frame, subject.es_frame, subject.n_frames) == (0, 1, 2)
    assert subject.info["layout"] == "mnms-flat"
    np.testing.assert_array_equal(subject.es_labels.data, _frame(3))


def test_flat_layout_missing_es(tmp_path):
    vol = LabelVolume.from_array(_frame(5), SPACING)
    write_label_volume(vol, tmp_path / "E5F6_sa_ED_gt.nii.gz")
    with pytest.raises(CardioInputError, match=r"E5F6_sa_ES_gt\.nii\.gz: label file not found"):
        read_mnms_cohort(tmp_path)


def test_subject_ids_filter(tmp_path):
    root = make_release(tmp_path, [("Z9", 0, 3, "NOR"), ("A1", 0, 3, "DCM")])
    assert [s.subject_id for s in read_mnms_cohort(root)] == ["A1", "Z9"]
    assert [s.subject_id for s in read_mnms_cohort(root, subject_ids=["Z9"])] == ["Z9"]
    with pytest.raises(CardioInputError, match="no subject"):
        read_mnms_cohort(root, subject_ids=["Q7"])
