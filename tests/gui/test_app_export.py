"""File menu actions on the real window: NIfTI / surface export, checkpoints, sessions, SPADE."""

from __future__ import annotations

import threading

import nibabel as nib
import numpy as np
import pytest
import SimpleITK
from app_harness import open_window, settle, tiny_checkpoints
from PySide6.QtCore import Qt
from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

from cardio_explorer.app.jobs import models
from cardio_explorer.app.jobs.session import read_session
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.labels import INTERNAL_TO_ACDC

pytestmark = pytest.mark.gui
ACDC = np.asarray(INTERNAL_TO_ACDC, dtype=np.uint8)  # in-memory value -> value on disk


@pytest.fixture
def window(qtbot):
    return open_window(qtbot)


def _read(path) -> np.ndarray:
    return SimpleITK.GetArrayFromImage(SimpleITK.ReadImage(str(path)))


def _ras_to_lps(point):
    x, y, z = point
    return (-x, -y, z)


def test_export_labels_reads_back_with_simpleitk_in_the_same_frame(window, tmp_path):
    labels = window.display.current_labels()
    path = window.exports.export_labels(tmp_path / "morph")
    assert path.name == "morph.nii.gz"
    assert (tmp_path / "morph_labels.txt").is_file()
    image = SimpleITK.ReadImage(str(path))
    # ACDC values on disk, as every label file the project writes
    np.testing.assert_array_equal(SimpleITK.GetArrayFromImage(image), ACDC[labels.data])
    assert '"RV blood pool"' in (tmp_path / "morph_labels.txt").read_text().splitlines()[-3]
    np.testing.assert_allclose(image.GetSpacing(), labels.spacing_xyz, rtol=1e-5)
    np.testing.assert_allclose(image.GetOrigin(), _ras_to_lps(labels.origin_xyz), atol=1e-3)


def test_export_sequence_is_4d_with_time_last_and_the_frame_duration(qtbot, window, tmp_path):
    window.conditions_panel.generate.click()
    settle(qtbot, window)
    sample = window.display.sample
    path = window.exports.export_sequence(tmp_path / "beat.nii.gz")
    image = SimpleITK.ReadImage(str(path))
    np.testing.assert_array_equal(SimpleITK.GetArrayFromImage(image), ACDC[sample.labels.data])
    header = nib.load(str(path)).header
    assert header.get_data_shape()[3] == sample.labels.n_frames
    assert header.get_zooms()[3] * {"msec": 1.0, "sec": 1000.0}[
        header.get_xyzt_units()[1]
    ] == pytest.approx(sample.labels.frame_duration_ms)
    # the current frame alone
    frame_path = window.exports.export_labels(tmp_path / "frame.nii.gz")
    np.testing.assert_array_equal(_read(frame_path), ACDC[sample.labels.data[window.state.frame]])


def test_export_surfaces_in_the_nifti_world_frame(window, tmp_path):
    labels = window.display.current_labels()
    written = window.exports.export_surfaces(tmp_path / "surf", "vtp")
    stem = "p1_NOR_toDCM_alpha050_seed0_ED_"  # subject, group, target, alpha, seed, phase
    assert sorted(p.name for p in written) == [f"{stem}{s}.vtp" for s in ("lv", "myo", "rv")]
    reader = vtkXMLPolyDataReader()
    reader.SetFileName(str(tmp_path / "surf" / f"{stem}myo.vtp"))
    reader.Update()
    poly = reader.GetOutput()
    assert poly.GetNumberOfPoints() > 0
    assert poly.GetFieldData().GetAbstractArray("SPACE").GetValue(0) == "LPS"
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in labels.spatial_shape])).reshape(3, -1).T
    world = np.array([_ras_to_lps(p) for p in labels.index_to_world(corners)])
    bounds = np.asarray(poly.GetBounds()).reshape(3, 2)
    spacing = max(labels.spacing_xyz)
    assert np.all(bounds[:, 0] >= world.min(axis=0) - spacing)
    assert np.all(bounds[:, 1] <= world.max(axis=0) + spacing)


def test_export_morph_path_writes_the_series(qtbot, window, tmp_path):
    window.exports.export_morph_path(tmp_path / "path", n_steps=3)
    settle(qtbot, window)
    files = window.exports.last_series
    assert [p.name for p in files[:3]] == [
        "p1_DCM_ED_step00_alpha000.nii.gz",
        "p1_DCM_ED_step01_alpha050.nii.gz",
        "p1_DCM_ED_step02_alpha100.nii.gz",
    ]
    assert files[3].name == "labels.txt"
    morph = PathologyMorph.from_checkpoint(tiny_checkpoints()["label_vae"])
    expected = morph.morph("p1", "DCM", "ED", 1.0).labels.data
    np.testing.assert_array_equal(_read(files[2]), ACDC[expected])


def test_a_bad_checkpoint_shows_an_error_dialog_without_blocking(qtbot, window, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    before = window.engines
    assert window.exports.open_checkpoint(bad) is not None  # read on the worker
    settle(qtbot, window)
    assert window.engines is before
    box = window.error_boxes[-1]
    assert box.isVisible()  # open() returned at once: the event loop keeps running
    assert box.windowModality() == Qt.WindowModality.WindowModal
    assert "broken.safetensors" in box.text()
    assert "not a readable safetensors" in box.text()
    assert "broken.safetensors" in window.statusBar().currentMessage()
    box.accept()
    assert window.exports.open_checkpoint(tmp_path / "missing.safetensors") is None
    assert "not found" in window.error_boxes[-1].text()  # said at once, nothing submitted


def test_opening_a_checkpoint_replaces_that_model_off_the_gui_thread(qtbot, window, monkeypatch):
    path = tiny_checkpoints()["spade"]
    threads, progress = [], []
    build = models.LOADERS["spade"]

    def recording(checkpoint, device):
        threads.append(threading.current_thread().name)
        return build(checkpoint, device)

    monkeypatch.setitem(models.LOADERS, "spade", recording)
    window.worker.progress.connect(
        lambda request, text: progress.append(text) if request.lane == "checkpoint" else None
    )
    before = window.engines.slot("spade")
    request = window.exports.open_checkpoint(path)
    assert window.engines.slot("spade") is before  # nothing loaded on the GUI thread
    settle(qtbot, window)
    assert threads == ["cardio-worker"]
    assert progress == ["reading spade.safetensors…", "building the SPADE model…"]
    slot = window.engines.slot("spade")
    assert slot.ready
    assert slot.path == path == request.path
    assert len(slot.sha256) == 64


def test_session_round_trip_restores_controls_and_camera(qtbot, window, tmp_path):
    window.state.update({"alpha": 0.3, "target_group": "HCM", "seed": 5, "phase": "ES"})
    settle(qtbot, window)
    window.views.heart.renderer.GetActiveCamera().Azimuth(40)
    camera = window.views.heart.camera()
    path = window.exports.save_session(tmp_path / "view.json")
    session = read_session(path)
    assert session.checkpoints["label_vae"]["sha256"] == window.engines.slot("label_vae").sha256
    assert session.scene == "morph"
    window.close()

    other = open_window(qtbot)
    assert other.state.alpha == 0.5
    notes = other.exports.open_session(path)
    assert notes == []
    settle(qtbot, other)
    for key in ("alpha", "target_group", "seed", "phase"):
        assert other.state.get(key) == session.controls[key]
    np.testing.assert_allclose(other.views.heart.camera()["position"], camera["position"])
    assert other.morph.last_result.request.query.target_group == "HCM"
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert other.exports.open_session(bad) is None
    assert "not a cardio-explorer session" in other.error_boxes[-1].text()


def test_show_image_synthesises_and_exports_the_image(qtbot, window, tmp_path):
    assert window.morph_panel.show_image.isEnabled()
    window.morph_panel.show_image.click()
    settle(qtbot, window)
    image = window.display.morph.image
    assert image is not None
    assert window.views.slice.displayed_image() is not None
    assert image.data.shape == window.display.morph.labels.data.shape
    path = window.exports.export_image(tmp_path / "image.nii.gz")
    np.testing.assert_allclose(_read(path), image.data)
    # without SPADE, the toggle is off with a note saying why
    window.close()
    plain = open_window(qtbot, kinds=("label_vae", "cheart"))
    assert not plain.morph_panel.show_image.isEnabled()
    assert "not found" in plain.morph_panel.show_image.toolTip()


def test_export_surfaces_asks_before_replacing(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    first = window.exports.export_surfaces(tmp_path, "stl")
    stamps = [p.stat().st_mtime_ns for p in first]
    asked = []

    def answer(reply):
        def question(*args, **kwargs):
            asked.append(args[2])
            return reply

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    assert window.exports.export_surfaces(tmp_path, "stl") is None
    assert len(asked) == 1
    assert "3 of these files exist" in asked[0]
    assert [p.stat().st_mtime_ns for p in first] == stamps  # nothing replaced
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    assert window.exports.export_surfaces(tmp_path, "stl") == first
    window.state.set("alpha", 0.8)  # another alpha: other names, nothing to ask
    assert all("alpha080" in p.name for p in window.exports.export_surfaces(tmp_path, "stl"))
    assert len(asked) == 2
