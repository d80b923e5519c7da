"""Opening your own heart in the real window: menu path, drops, command line, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK
from app_harness import open_window, settle
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from tiny_models import heart_stack

from cardio_explorer.app.gui.controllers.heart import OWN_IMAGE_TAB, recent_hearts
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot):
    return open_window(qtbot, kinds=("label_vae",))


def _write_pair(folder, images=True):
    affine = np.diag([1.2, 1.2, 9.0, 1.0])
    affine[:3, 3] = (-30.0, 10.0, 40.0)
    paths = []
    for phase, radius in (("ED", 5.0), ("ES", 3.5)):
        labels = LabelVolume(heart_stack(5, radius), affine)
        paths.append(write_label_volume(labels, folder / f"mine_{phase}_gt.nii.gz"))
        if images:
            image = ImageVolume(labels.data.astype(np.float32) * 100.0, affine)
            write_image_volume(image, folder / f"mine_{phase}.nii.gz")
    return paths


def test_an_opened_heart_joins_the_subjects_morphs_and_exports_on_its_own_grid(
    qtbot, window, tmp_path
):
    ed, _ = _write_pair(tmp_path)
    before = window.morph_panel.subject.count()
    window.hearts.open([ed])
    settle(qtbot, window)
    assert not window.errors
    assert window.state.subject_id == "mine"
    assert window.morph_panel.subject.count() == before + 1
    assert "mine (yours)" in window.morph_panel.subject.currentText()
    shown = window.display.morph
    assert shown is not None
    assert shown.labels.name.startswith("mine -> ")
    first = dict(window.views.readouts.values)
    window.state.set("alpha", 1.0)
    settle(qtbot, window)
    assert dict(window.views.readouts.values) != first
    # its own image sits in a tab beside the plots
    tabs = [window.plots.tabText(i) for i in range(window.plots.count())]
    assert OWN_IMAGE_TAB in tabs
    assert window.hearts.own_image.displayed_image() is not None
    # exported labels land on the file's own grid
    written = window.exports.export_labels(tmp_path / "out.nii.gz")
    read, original = SimpleITK.ReadImage(str(written)), SimpleITK.ReadImage(str(ed))
    assert read.GetSize() == original.GetSize()
    np.testing.assert_allclose(read.GetOrigin(), original.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(read.GetSpacing(), original.GetSpacing(), atol=1e-4)
    assert recent_hearts()[0].endswith("mine_ED_gt.nii.gz")
    window.hearts.refresh_recent()
    assert window.hearts.recent_menu.actions()[0].text() == "mine_ED_gt.nii.gz"


def test_a_corrupt_file_gives_one_dialog_and_the_app_stays_up(qtbot, window, tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b this was a NIfTI once")
    subject = window.state.subject_id
    window.hearts.open([bad])
    settle(qtbot, window)
    assert len(window.errors) == 1
    assert "broken.nii.gz" in window.errors[0]
    assert window.error_boxes
    assert window.error_boxes[-1].windowTitle() == "Cannot open heart"
    assert window.state.subject_id == subject
    window.state.set("alpha", 0.9)  # still morphs
    settle(qtbot, window)
    assert window.display.morph.labels.name.endswith("alpha 0.90")


def test_dropping_files_on_the_window_opens_them(qtbot, window, tmp_path):
    ed, es = _write_pair(tmp_path, images=False)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ed)), QUrl.fromLocalFile(str(es))])
    drop = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    # the window's own event filter (Qt's sendEvent of a drop with no drag in progress crashes
    # the offscreen platform's drag manager)
    assert window.hearts.eventFilter(window, drop) is True
    assert drop.isAccepted()
    assert window.hearts.last_request is not None
    assert window.hearts.last_request.paths == (ed, es)
    settle(qtbot, window)
    assert window.state.subject_id == "mine"


def test_the_command_line_file_must_exist(tmp_path, capsys):
    from cardio_explorer.app.gui.main import run

    assert run([str(tmp_path / "typo.nii.gz")]) == 2
    assert "typo.nii.gz: not found" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_heart_opened_in_the_window_gains_lvedv_when_morphed_to_dcm(qtbot, realdata_dir):
    import torch

    from cardio_explorer.app.gui.window import MainWindow
    from cardio_explorer.app.jobs.models import load_engines
    from cardio_explorer.resources import bundled_checkpoint

    if not bundled_checkpoint("label_vae").is_file():
        pytest.skip("no bundled label VAE")
    engines = load_engines({}, torch.device("cpu"), kinds=("label_vae",))
    window = MainWindow(engines)
    qtbot.addWidget(window)
    window.show()
    settle(qtbot, window, 120_000)
    window.hearts.open([realdata_dir / "H1N8S6_sa_ED_gt.nii.gz"])
    settle(qtbot, window, 120_000)
    assert window.state.subject_id == "H1N8S6"
    assert not window.errors
    window.state.update({"target_group": "DCM", "alpha": 0.0})
    settle(qtbot, window, 120_000)
    healthy = window.views.readouts.values["lvedv_ml"]
    window.state.set("alpha", 1.0)
    settle(qtbot, window, 120_000)
    dilated = window.views.readouts.values["lvedv_ml"]
    assert 60.0 < healthy < 130.0
    assert dilated > 1.5 * healthy
    assert window.hearts.own_image.displayed_image() is not None  # M&Ms images lie beside


def test_a_heart_on_the_command_line_is_opened_before_the_screenshot(tmp_path, monkeypatch):
    from app_harness import tiny_checkpoints

    from cardio_explorer.app.gui import main as gui

    ed, _ = _write_pair(tmp_path)
    seen = []
    close = gui.close_now

    def remember(app, window):
        seen.append((window.state.subject_id, list(window.errors)))
        close(app, window)

    monkeypatch.setattr(gui, "close_now", remember)
    paths = tiny_checkpoints()
    argv = [str(ed), "--screenshot", str(tmp_path / "shot.png"), "--device", "cpu"]
    argv += ["--label-vae", str(paths["label_vae"]), "--cheart", str(tmp_path / "none")]
    argv += ["--spade", str(tmp_path / "none")]
    assert gui.run(argv) == 0
    assert seen == [("mine", [])]
    assert (tmp_path / "shot.png").is_file()


def test_an_opened_heart_can_be_completed_by_cheart(qtbot, tmp_path):
    window = open_window(qtbot, kinds=("label_vae", "cheart"))
    ed, _ = _write_pair(tmp_path)
    window.hearts.open([ed])
    settle(qtbot, window)
    assert window.state.subject_id == "mine"
    window.conditions_panel.complete.click()  # a cycle from the ED frame of your heart's morph
    settle(qtbot, window)
    assert not window.errors
    assert window.display.scene == "sequence"
    assert window.display.sample.labels.n_frames > 1


def test_a_session_reopens_its_hearts_and_shows_the_one_it_showed(qtbot, window, tmp_path):
    ed, _ = _write_pair(tmp_path)
    window.hearts.open([ed])
    settle(qtbot, window)
    window.state.update({"alpha": 0.7, "subject_id": "mine"})
    settle(qtbot, window)
    saved = window.exports.save_session(tmp_path / "s.json")
    other = open_window(qtbot, kinds=("label_vae",))
    assert "mine" not in other.engines.morph.atlas.references
    other.exports.open_session(saved)
    settle(qtbot, other)
    assert not other.errors
    assert other.state.subject_id == "mine"
    assert other.state.alpha == 0.7
    assert other.display.morph.labels.name.startswith("mine -> ")


def test_hearts_opened_back_to_back_both_join(qtbot, window, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    ed_a, _ = _write_pair(first, images=False)
    ed_b, _ = _write_pair(second, images=False)
    assert window.hearts.open([ed_a]) is not None
    assert window.hearts.open([ed_b]) is None  # waits for the first
    settle(qtbot, window)
    qtbot.waitUntil(lambda: "mine-2" in window.engines.morph.atlas.references, timeout=30_000)
    settle(qtbot, window)
    assert {"mine", "mine-2"} <= set(window.engines.morph.atlas.references)
    assert window.state.subject_id == "mine-2"


def test_the_spade_image_of_your_heart_is_exported_on_its_own_grid(qtbot, tmp_path):
    window = open_window(qtbot, kinds=("label_vae", "spade"))
    ed, _ = _write_pair(tmp_path)
    window.hearts.open([ed])
    settle(qtbot, window)
    window.state.set("show_image", True)
    settle(qtbot, window)
    written = window.exports.export_image(tmp_path / "image.nii.gz")
    read, original = SimpleITK.ReadImage(str(written)), SimpleITK.ReadImage(str(ed))
    assert read.GetSize() == original.GetSize()
    np.testing.assert_allclose(read.GetDirection(), original.GetDirection(), atol=1e-5)
    assert np.ptp(SimpleITK.GetArrayFromImage(read)) > 0  # SPADE's image, not an empty grid
