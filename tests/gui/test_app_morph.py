"""The pathology morph panel driving the real window (offscreen) on tiny models."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from app_harness import open_window, settle, tiny_checkpoints, wait_for
from PySide6.QtCore import Qt

from cardio_explorer.app.gui.window import MainWindow
from cardio_explorer.app.gui.workers import run_request
from cardio_explorer.app.jobs.models import load_engines
from cardio_explorer.app.jobs.morph import MorphRequest
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.resources import bundled_checkpoint
from cardio_explorer.viewer.surfaces import surfaces_from_meshes

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot):
    return open_window(qtbot)


def _direct(window, **changes):
    """The morph the engine gives for the window's controls (with some changed)."""
    s = {**window.state.snapshot(), **changes}
    morph = PathologyMorph.from_checkpoint(tiny_checkpoints()["label_vae"])
    return morph.morph(
        s["subject_id"], s["target_group"], s["phase"], s["alpha"], s["correlated"], s["seed"]
    )


def test_window_opens_on_the_first_nor_subject(window):
    assert window.state.subject_id == "p1"
    assert window.morph_panel.subject.count() == 2  # p1, p2: the NOR references
    assert [window.morph_panel.target.itemText(i) for i in range(2)] == ["DCM", "HCM"]
    assert window.display.scene == "morph"
    assert window.first_heart_s is not None
    assert window.views.heart.actor(1).GetMapper().GetInput().GetNumberOfPoints() > 0
    assert "CPU" in window.device_label.text()


def test_alpha_slider_changes_the_readouts_which_match_the_shown_labels(qtbot, window):
    readouts = window.views.readouts
    before = dict(readouts.values)
    window.morph_panel.alpha.setValue(100)
    assert window.state.alpha == 1.0
    settle(qtbot, window)
    shown = window.display.morph
    after = dict(readouts.values)
    assert after != before
    expected = measure_phenotypes(shown.ed, shown.es).as_dict()
    for key in ("lvedv_ml", "lvesv_ml", "lvef", "lvm_g", "rvedv_ml", "rvef"):
        assert after[key] == pytest.approx(expected[key])
    unit = "%" if key.endswith("ef") else "g" if key == "lvm_g" else "mL"
    assert readouts.text("rvef") == f"{expected['rvef']:.1f} {unit}"
    np.testing.assert_array_equal(shown.labels.data, _direct(window, alpha=1.0).labels.data)
    # the 3D view shows exactly this step's surfaces
    for label, poly in surfaces_from_meshes(shown.meshes).items():
        assert window.views.heart.actor(label).GetMapper().GetInput() is poly
    np.testing.assert_array_equal(
        window.views.slice.displayed_labels(), shown.labels.data[window.views.slice.slice_index]
    )


def test_correlated_toggle_requests_the_uncorrelated_morph(qtbot, window):
    window.morph_panel.correlated.click()
    assert window.state.correlated is False
    settle(qtbot, window)
    request = window.morph.last_result.request
    assert request.query.correlated is False
    direct = _direct(window, correlated=False)
    np.testing.assert_array_equal(window.display.morph.labels.data, direct.labels.data)
    np.testing.assert_allclose(window.display.morph.latent_path, direct.latent_path)


def test_phase_and_target_switch_the_shown_step(qtbot, window):
    window.morph_panel.phase_es.click()
    window.morph_panel.target.setCurrentText("HCM")
    assert (window.state.phase, window.state.target_group) == ("ES", "HCM")
    settle(qtbot, window)
    request = window.morph.last_result.request
    assert (request.query.phase, request.query.target_group) == ("ES", "HCM")
    np.testing.assert_array_equal(window.display.morph.labels.data, _direct(window).labels.data)
    assert window.views.alpha_curve.curve_names()  # the phenotype-vs-alpha curves are drawn


def test_a_slow_superseded_request_never_draws(qtbot):
    started: list[MorphRequest] = []

    def runner(request, is_current):
        if isinstance(request, MorphRequest):
            started.append(request)
            if request.query.alpha == 0.9:
                time.sleep(0.4)
        return run_request(request, is_current)

    window = open_window(qtbot, runner=runner)
    window.state.set("alpha", 0.9)
    wait_for(qtbot, lambda: any(r.query.alpha == 0.9 for r in started))
    slow = next(r for r in started if r.query.alpha == 0.9)
    window.state.set("alpha", 0.1)
    settle(qtbot, window)
    qtbot.wait(50)
    assert slow.request_id not in window.display.drawn_ids
    assert window.morph.last_result.request.query.alpha == 0.1
    np.testing.assert_array_equal(
        window.display.morph.labels.data, _direct(window, alpha=0.1).labels.data
    )


def test_surfaces_come_first_and_stale_readouts_are_greyed_until_the_new_ones_are_in(qtbot):
    gate = threading.Event()
    gate.set()

    def runner(request, is_current):
        job = run_request(request, is_current)
        if not isinstance(request, MorphRequest):
            return job

        def gated():
            yield next(job)  # the partial result: shown phase and its surfaces
            gate.wait(10)
            return (yield from job)

        return gated()

    window = open_window(qtbot, runner=runner)
    readouts = window.views.readouts
    old = dict(readouts.values)
    gate.clear()
    window.state.set("alpha", 1.0)
    wait_for(qtbot, lambda: window.display.morph_id == window.worker.latest_id("morph"))
    shown = window.display.morph
    assert not shown.complete
    assert readouts.pending
    assert readouts.values == old
    assert (
        window.views.heart.actor(2).GetMapper().GetInput() is surfaces_from_meshes(shown.meshes)[2]
    )
    gate.set()
    settle(qtbot, window)
    assert not readouts.pending
    assert window.display.morph.complete
    assert window.display.morph.meshes is shown.meshes  # same step: nothing redrawn
    assert (
        window.views.heart.actor(2).GetMapper().GetInput() is surfaces_from_meshes(shown.meshes)[2]
    )
    expected = measure_phenotypes(window.display.morph.ed, window.display.morph.es)
    assert readouts.values["lvedv_ml"] == pytest.approx(expected.lvedv_ml)


def test_undo_and_redo_shortcuts_revert_control_changes(qtbot, window):
    window.activateWindow()
    window.morph_panel.alpha.setValue(80)
    window.morph_panel.seed.setValue(3)
    settle(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.state.seed == 0
    assert window.morph_panel.seed.value() == 0
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.state.alpha == 0.5
    assert window.morph_panel.alpha.value() == 50
    modifiers = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, Qt.Key.Key_Z, modifiers)
    assert window.state.alpha == 0.8
    settle(qtbot, window)
    assert window.morph.last_result.request.query.alpha == 0.8


def test_space_plays_the_alpha_sweep(qtbot, window):
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.morph_panel.playing
    wait_for(qtbot, lambda: window.state.alpha >= 0.6, timeout_ms=10_000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.morph_panel.playing
    settle(qtbot, window)
    assert window.morph.last_result.request.query.alpha == window.state.alpha


def test_latent_view_click_loads_a_subject_or_picks_a_target(qtbot, window):
    assert window.display.latent is not None
    assert set(window.views.latent.groups()) == {"NOR", "DCM", "HCM"}
    window.views.latent.subject_clicked.emit("p2")
    assert window.state.subject_id == "p2"
    window.views.latent.subject_clicked.emit("HCM sample 2")
    assert window.state.target_group == "HCM"
    settle(qtbot, window)
    np.testing.assert_array_equal(window.display.morph.labels.data, _direct(window).labels.data)
    # the highlighted point follows alpha along the drawn path
    latent = window.display.latent
    np.testing.assert_allclose(
        window.views.latent.current_point(), latent.point_at(window.state.alpha)
    )


def test_tsne_embedding_option(qtbot, window):
    window.embedding_actions["tsne"].trigger()
    settle(qtbot, window)
    assert window.display.latent.method == "tsne"
    assert window.views.latent.plot_item.getAxis("bottom").labelText == "t-SNE 1"


def test_loaded_cohort_subjects_become_morph_sources(qtbot, window):
    window.exports.open_cohort(tiny_checkpoints()["cohort"])
    settle(qtbot, window)
    picker = window.morph_panel.subject
    assert [picker.itemData(i) for i in range(picker.count())] == ["p1", "p2", "p3", "p4"]
    assert "DCM" in picker.itemText(2)
    window.morph_panel.subject.setCurrentIndex(2)
    settle(qtbot, window)
    assert window.morph.last_result.request.query.subject_id == "p3"


def test_missing_bundled_models_say_how_to_get_them(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(
        "cardio_explorer.resources.bundled_checkpoint",
        lambda kind: tmp_path / f"{kind}.safetensors",
    )
    engines = load_engines({}, torch.device("cpu"))
    window = MainWindow(engines)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    panel = window.morph_panel
    assert panel.message.isVisible()
    assert "cardio-explorer train label-vae" in panel.message.text()
    assert not panel.controls.isEnabled()
    assert "cardio-explorer train cheart" in window.conditions_panel.message.text()
    assert "SPADE" in panel.show_image.toolTip()
    settle(qtbot, window)
    assert window.display.scene is None
    assert window.errors == []


def test_without_a_label_vae_a_generated_heartbeat_is_shown(qtbot):
    window = open_window(qtbot, kinds=("cheart",))
    assert "not found" in window.morph_panel.message.text()
    assert window.display.scene == "sequence"
    assert window.tabs.currentIndex() == 1
    assert window.first_heart_s is not None


@pytest.mark.skipif(
    not bundled_checkpoint("label_vae").is_file(), reason="the bundled label VAE is not trained yet"
)
def test_bundled_model_morphs_towards_the_pathology(qtbot):
    engines = load_engines({}, torch.device("cpu"))
    window = MainWindow(engines)
    qtbot.addWidget(window)
    window.show()
    values = {}
    for target, key in (("DCM", "lvedv_ml"), ("HCM", "lvm_g")):
        for alpha in (0.0, 1.0):
            window.state.update({"target_group": target, "alpha": alpha})
            settle(qtbot, window, timeout_ms=60_000)
            values[(target, alpha)] = window.views.readouts.values[key]
    assert values[("DCM", 1.0)] > values[("DCM", 0.0)]  # DCM: dilated LV
    assert values[("HCM", 1.0)] > values[("HCM", 0.0)]  # HCM: heavier myocardium


def test_a_morph_of_a_loaded_subject_exports_onto_its_file_grid(qtbot, window, tmp_path):
    import nibabel as nib

    cohort = tiny_checkpoints()["cohort"]
    window.exports.open_cohort(cohort)
    settle(qtbot, window)
    window.morph_panel.subject.setCurrentIndex(2)  # p3, 7 slices
    settle(qtbot, window)
    shown = window.display.current_labels()
    assert shown.source_grid is not None
    path = window.exports.export_labels(tmp_path / "morph.nii.gz")
    written = nib.load(str(path))
    phase = window.state.phase
    source = nib.load(str(cohort / "p3" / f"p3_frame{1 if phase == 'ED' else 8:02d}_gt.nii.gz"))
    assert written.shape == source.shape
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-4)
    assert np.count_nonzero(np.asarray(written.dataobj)) > 0
