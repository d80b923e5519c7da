"""Help menu (shortcuts, About with checkpoint hashes), Preferences, and tooltips everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from app_harness import open_window

from cardio_explorer.app.gui.controllers.help import controls_without_tooltip
from cardio_explorer.app.gui.controllers.preferences import Preferences, load_preferences
from cardio_explorer.app.jobs.models import training_summary
from cardio_explorer.engine.device import precision_policy, set_precision
from cardio_explorer.engine.nn.checkpoint import file_sha256, read_checkpoint_header

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot):
    return open_window(qtbot)


def _menu(window, title):
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == title:
            return action.menu()
    raise AssertionError(f"no {title} menu")


def test_every_control_has_a_tooltip_the_alpha_slider_too(window):
    assert controls_without_tooltip(window.centralWidget()) == []
    assert "Alpha" in window.morph_panel.alpha.toolTip()


def test_reset_3d_view_shows_its_key(window):
    texts = [a.text() for a in _menu(window, "View").actions()]
    assert "Reset 3D view\tR" in texts


def test_the_shortcuts_dialog_lists_menu_and_window_keys(window):
    help_menu = _menu(window, "Help")
    shortcuts = next(a for a in help_menu.actions() if a.text() == "Keyboard shortcuts")
    shortcuts.trigger()
    text = window.help.dialogs["shortcuts"].text.toPlainText()
    for keys in ("Space", "R", "Ctrl+Z", "Ctrl+Shift+O", "Ctrl+S"):
        assert keys in text
    assert "Open heart" in text
    assert "Rotate" in text


def test_about_names_version_device_and_each_checkpoint_hash(window):
    next(a for a in _menu(window, "Help").actions() if a.text().startswith("About")).trigger()
    text = window.help.dialogs["about"].text.toPlainText()
    assert "0.1.0" in text
    assert "CPU" in text
    assert "Precision" in text
    for kind in ("label_vae", "cheart", "spade"):
        slot = window.engines.slot(kind)
        assert slot.sha256
        assert slot.sha256 == file_sha256(slot.path)
        assert slot.sha256 in text
    assert "latent atlas: NOR 2, DCM 1, HCM 1" in text


def test_training_summary_of_a_bundled_header():
    from cardio_explorer.resources import bundled_checkpoint

    path = bundled_checkpoint("label_vae")
    if not path.is_file():
        pytest.skip("no bundled label VAE")
    header = read_checkpoint_header(path)
    training = header["extra"]["training"]
    summary = training_summary(header)
    assert f"{training['n_subjects']} subjects" in summary
    assert f"data {Path(training['data']).name}" in summary
    assert "NOR" in summary


def test_preferences_save_and_apply_threads(qtbot, window):
    threads = torch.get_num_threads()
    dialog = window.help.show_preferences()
    dialog.device.setCurrentText("cpu")
    dialog.threads.setValue(1)
    dialog.precision.setCurrentText("fp32")
    try:
        dialog.accept()
        assert load_preferences() == Preferences("cpu", "fp32", 1)
        assert torch.get_num_threads() == 1
        assert precision_policy() == "fp32"
        assert window.device_label.text().endswith("fp32")
    finally:
        torch.set_num_threads(threads)
        set_precision("auto")
