"""Cohort folders: layout detection, the generic layout, ordering and clear errors."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.acdc import write_info_cfg
from cardio_explorer.engine.io.cohort import Layout, detect_layout, read_cohort
from cardio_explorer.engine.io.generic import read_conditions_csv
from cardio_explorer.engine.io.nifti import write_label_volume
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.engine.volume import LabelVolume

SPACING = (8.0, 1.5, 1.5)
VOXEL_ML = 8.0 * 1.5 * 1.5 / 1000


def _frame(lv_half: int) -> np.ndarray:
    data = np.zeros((3, 20, 20), np.uint8)
    data[:, 9 - lv_half - 1 : 9 + lv_half + 1, 2 : 2 + 2 * lv_half + 2] = Label.MYO
    data[:, 9 - lv_half : 9 + lv_half, 3 : 3 + 2 * lv_half] = Label.LV
    data[:, 2:6, 15:19] = Label.RV
    return data


def _write(path, data, acdc=False, spacing=SPACING):
    write_label_volume(LabelVolume.from_array(data, spacing), path, acdc_labels=acdc)


def _acdc_folder(root, sid, group="NOR", extra=None):
    folder = root / sid
    folder.mkdir(parents=True)
    info = {"ED": 1, "ES": 3, "Group": group, "Height": 170, "Weight": 70, "NbFrame": 5}
    write_info_cfg(folder / "Info.cfg", info | (extra or {}))
    _write(folder / f"{sid}_frame01_gt.nii.gz", _frame(5), acdc=True)
    _write(folder / f"{sid}_frame03_gt.nii.gz", _frame(3), acdc=True)
    return folder


def test_acdc_cohort_sorted_with_phenotypes(tmp_path):
    for sid in ("patient010", "patient002"):
        _acdc_folder(tmp_path, sid, extra={"Age": 50, "Sex": "F", "SBP": 120})
    (tmp_path / "manifest.csv").write_text("subject\npatient002\n")  # synthetic cohorts have one
    assert detect_layout(tmp_path) is Layout.ACDC
    subjects = read_cohort(tmp_path)
    assert [s.subject_id for s in subjects] == ["patient002", "patient010"]
    ph = measure_phenotypes(subjects[0].ed_labels, subjects[0].es_labels)
    assert ph.lvedv_ml == pytest.approx(3 * 10 * 10 * VOXEL_ML)
    assert ph.lvesv_ml == pytest.approx(3 * 6 * 6 * VOXEL_ML)
    assert ph.rvedv_ml == pytest.approx(3 * 4 * 4 * VOXEL_ML)
    assert subjects[0].conditions is not None
    assert subjects[0].conditions.sbp == 120.0


def test_acdc_training_testing_nesting(tmp_path):
    _acdc_folder(tmp_path / "training", "patient001")
    _acdc_folder(tmp_path / "testing", "patient101", group="RV")
    subjects = read_cohort(tmp_path)
    assert [(s.subject_id, s.group) for s in subjects] == [
        ("patient001", "NOR"),
        ("patient101", "ARV"),
    ]


def test_a_bad_subject_is_an_error_naming_it(tmp_path):
    _acdc_folder(tmp_path, "patient001")
    bad = _acdc_folder(tmp_path, "patient002")
    (bad / "Info.cfg").write_text("ED: 1\nGroup: NOR\n")
    with pytest.raises(CardioInputError, match=r"patient002/Info\.cfg: missing ES"):
        read_cohort(tmp_path)
    assert [s.subject_id for s in read_cohort(tmp_path, subject_ids=["patient001"])] == [
        "patient001"
    ]


def test_generic_layout_with_conditions_csv(tmp_path):
    _write(tmp_path / "s2_ED.nii.gz", _frame(5), acdc=True)
    _write(tmp_path / "s2_ES.nii.gz", _frame(3), acdc=True)
    _write(tmp_path / "s1_ED_gt.nii.gz", _frame(4), acdc=True)
    (tmp_path / "conditions.csv").write_text(
        "subject,group,age,sex,height,weight,sbp\ns2,DCM,60,male,180,90,135\ns1,,,,,,\n"
    )
    assert detect_layout(tmp_path) is Layout.GENERIC
    s1, s2 = read_cohort(tmp_path, labels="acdc")
    assert s1.subject_id == "s1"
    assert (s1.es_frame, s1.group, s1.conditions) == (None, None, None)
    assert s2.group == "DCM"
    assert s2.conditions.sex == "M"
    assert s2.conditions.sbp == 135.0
    np.testing.assert_array_equal(s2.ed_labels.data, _frame(5))  # ACDC values remapped
    nib.save(nib.Nifti1Image(_frame(5).T * 2, np.eye(4)), str(tmp_path / "s3_ED.nii.gz"))
    with pytest.raises(CardioInputError, match=r"s3_ED\.nii\.gz: unknown label values \[4, 6\]"):
        read_cohort(tmp_path, labels="acdc")


def test_generic_internal_convention_and_4d(tmp_path):
    seq = np.stack([_frame(5), _frame(4), _frame(3)])
    _write(tmp_path / "heart.nii.gz", seq)
    (tmp_path / "conds.csv").write_text("ID;Group;ES\nheart;HCM;2\n")
    [subject] = read_cohort(tmp_path, frames="all")
    assert subject.n_frames == 3
    assert sorted(subject.labels) == [0, 1, 2]
    assert (subject.ed_frame, subject.es_frame, subject.group) == (0, 2, "HCM")
    np.testing.assert_array_equal(subject.labels[1].data, _frame(4))
    [ed_es] = read_cohort(tmp_path)
    assert sorted(ed_es.labels) == [0, 2]


def test_generic_labels_argument_is_checked(tmp_path):
    _write(tmp_path / "a.nii.gz", _frame(3))
    with pytest.raises(CardioInputError, match="labels: must be 'internal' or 'acdc'"):
        read_cohort(tmp_path, labels="mnms")  # type: ignore[arg-type]
    with pytest.raises(CardioInputError, match="label files only"):
        read_cohort(tmp_path, images=True)


def test_conditions_csv_errors(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("subject,age\na,old\n")
    with pytest.raises(CardioInputError, match=r"c\.csv row 2: age is not a number"):
        read_conditions_csv(path)
    path.write_text("name,age\na,3\n")
    with pytest.raises(CardioInputError, match="no 'subject' column"):
        read_conditions_csv(path)


def test_missing_empty_and_unrecognised_folders(tmp_path):
    with pytest.raises(CardioInputError, match="folder not found"):
        read_cohort(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CardioInputError, match=r"empty: folder is empty"):
        read_cohort(empty)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hi")
    with pytest.raises(CardioInputError, match="unrecognised layout"):
        read_cohort(other)
    with pytest.raises(CardioInputError, match="frames"):
        read_cohort(other, frames="every")  # type: ignore[arg-type]
