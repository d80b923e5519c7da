"""Real M&Ms label maps (shared/realdata/mnms-sample; skipped when absent): reader, phenotypes,
preprocessing. The expected numbers are the table in that folder's README."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from cardio_explorer.engine.io.cohort import Layout, detect_layout, read_cohort
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.engine.preprocess import preprocess_subject

# subject: shape (x, y, slices), spacing (x, y, z) mm, nibabel axcodes
GEOMETRY = {
    "B9G4U2": ((512, 440, 15), (0.795, 0.796, 10.0), ("P", "I", "L")),
    "G1K1V3": ((320, 320, 11), (1.182, 1.182, 10.0), ("L", "P", "S")),
    "G8R0Z9": ((256, 256, 11), (1.484, 1.484, 10.0), ("P", "I", "R")),
    "H1N8S6": ((240, 196, 10), (1.333, 1.333, 9.6), ("L", "P", "S")),
}
# subject: LVEDV, LVESV, LVEF, RVEDV, RVEF, LV mass
PHENOTYPES = {
    "B9G4U2": (225.8, 111.4, 50.7, 211.9, 36.0, 135.3),
    "G1K1V3": (158.9, 70.8, 55.4, 168.3, 55.5, 99.2),
    "G8R0Z9": (138.8, 93.3, 32.8, 113.1, 47.4, 89.2),
    "H1N8S6": (95.5, 40.5, 57.6, 101.4, 53.1, 59.9),
}


def _table_row(ed, es) -> np.ndarray:
    ph = measure_phenotypes(ed, es)
    return np.array([ph.lvedv_ml, ph.lvesv_ml, ph.lvef, ph.rvedv_ml, ph.rvef, ph.lvm_g])


@pytest.fixture
def realdata_subjects(realdata_dir):
    """The four real subjects, read once per test (the files are small)."""
    return {s.subject_id: s for s in read_cohort(realdata_dir)}


def test_reader_finds_the_four_subjects(realdata_dir, realdata_subjects):
    assert detect_layout(realdata_dir) is Layout.MNMS
    assert sorted(realdata_subjects) == sorted(GEOMETRY)
    for sid, subject in realdata_subjects.items():
        shape, spacing, axcodes = GEOMETRY[sid]
        ed = subject.ed_labels
        assert ed.spatial_shape == shape[::-1]  # (slices, y, x) in memory
        assert ed.spacing_xyz == pytest.approx(spacing, abs=1e-3)
        assert nib.aff2axcodes(ed.affine) == axcodes
        assert ed.data.dtype == np.uint8
        assert set(np.unique(ed.data)) == {0, 1, 2, 3}
        assert subject.es_labels.same_grid(ed)


def test_phenotypes_as_read_match_the_readme(realdata_subjects):
    for sid, subject in realdata_subjects.items():
        measured = _table_row(subject.ed_labels, subject.es_labels)
        np.testing.assert_allclose(measured, PHENOTYPES[sid], rtol=0.01, err_msg=sid)


def test_preprocessing_keeps_the_heart_and_its_phenotypes(realdata_subjects):
    for sid, subject in realdata_subjects.items():
        out = preprocess_subject(subject, spacing_mm=1.5, size=128)  # CardioWarning = error
        for vol in out.labels.values():
            assert vol.spatial_shape[1:] == (128, 128)
            # scanner axes are orthogonal to ~1e-5, and the anatomical frame rotates in-plane
            assert vol.spacing_zyx[1:] == pytest.approx((1.5, 1.5), rel=1e-4)
            assert vol.spacing_zyx[0] == pytest.approx(max(GEOMETRY[sid][1]), abs=1e-3)
            # no foreground on the crop border: the heart lies fully inside the window
            border = np.concatenate(
                [
                    vol.data[:, 0].ravel(),
                    vol.data[:, -1].ravel(),
                    vol.data[:, :, 0].ravel(),
                    vol.data[:, :, -1].ravel(),
                ]
            )
            assert not border.any(), sid
        measured = _table_row(out.ed_labels, out.es_labels)
        np.testing.assert_allclose(measured, PHENOTYPES[sid], rtol=0.03, err_msg=sid)


def test_preprocessing_keeps_world_position_of_the_heart(realdata_subjects):
    for sid, subject in realdata_subjects.items():
        out = preprocess_subject(subject)
        for label in (1, 2, 3):
            before = subject.ed_labels.index_to_world(np.argwhere(subject.ed_labels.data == label))
            after = out.ed_labels.index_to_world(np.argwhere(out.ed_labels.data == label))
            # nearest-neighbour resampling moves a centroid by well under a voxel
            np.testing.assert_allclose(after.mean(0), before.mean(0), atol=1.0, err_msg=sid)
