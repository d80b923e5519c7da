"""The window draws its first heart on the label VAE alone; CHeart and SPADE load after it."""

from __future__ import annotations

import torch
from app_harness import settle, tiny_checkpoints

from cardio_explorer.app.gui.window import MainWindow
from cardio_explorer.app.jobs.models import load_engines


def _lazy_window(qtbot) -> tuple[MainWindow, dict]:
    paths = tiny_checkpoints()
    given = {kind: paths[kind] for kind in ("label_vae", "cheart", "spade")}
    engines = load_engines(given, torch.device("cpu"), kinds=("label_vae",))
    window = MainWindow(engines)
    qtbot.addWidget(window)
    window.show()
    return window, given


def test_models_not_needed_for_the_first_heart_load_on_the_worker(qtbot):
    window, given = _lazy_window(qtbot)
    assert window.engines.cheart is None
    assert window.engines.slot("cheart").loading
    assert not window.conditions_panel.controls.isEnabled()
    assert not window.morph_panel.show_image.isEnabled()
    request = window.load_pending_models(given)
    assert [kind for kind, _ in request.paths] == ["cheart", "spade"]
    settle(qtbot, window)
    assert window.display.scene == "morph"
    assert window.engines.cheart is not None
    assert window.engines.spade is not None
    assert not window.engines.slot("cheart").loading
    assert window.conditions_panel.controls.isEnabled()
    assert window.morph_panel.show_image.isEnabled()
    assert window.load_pending_models(given) is None  # nothing left to load


def test_a_checkpoint_opened_while_loading_is_kept(qtbot, tmp_path):
    window, given = _lazy_window(qtbot)
    assert window.exports.open_checkpoint(given["cheart"])  # on the worker, like the late load
    window.load_pending_models({**given, "cheart": tmp_path / "missing.safetensors"})
    settle(qtbot, window)
    slot = window.engines.slot("cheart")
    assert slot.ready
    assert slot.path == given["cheart"]
    assert window.engines.spade is not None


def test_a_broken_late_model_says_why(qtbot, tmp_path):
    window, given = _lazy_window(qtbot)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    window.load_pending_models({**given, "spade": bad})
    settle(qtbot, window)
    slot = window.engines.slot("spade")
    assert slot.model is None
    assert not slot.loading
    assert "bad.safetensors" in slot.message
    assert "bad.safetensors" in window.morph_panel.show_image.toolTip()
