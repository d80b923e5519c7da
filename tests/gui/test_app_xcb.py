"""On a real X server (Xvfb, Qt's xcb platform): playback, keys, focus and window sizes.

Run with ``QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1366x768x24" pytest -m xcb``;
skipped on the offscreen platform (see the ``xcb`` marker in tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from app_harness import open_window, settle, wait_for
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from cardio_explorer.app.gui.window import MainWindow
from cardio_explorer.app.jobs.models import load_engines
from cardio_explorer.resources import bundled_checkpoint

pytestmark = [pytest.mark.gui, pytest.mark.xcb]


@pytest.fixture
def window(qtbot):
    return open_window(qtbot)


def _focus(qtbot, widget) -> None:
    widget.activateWindow()
    widget.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(widget.hasFocus, timeout=5000)


@pytest.fixture
def real_window(qtbot):
    """The window on the bundled label VAE: real hearts (the tiny test model decodes speckled
    labels whose surfaces are twice as large, which no user sees)."""
    if not bundled_checkpoint("label_vae").is_file():
        return open_window(qtbot)
    engines = load_engines({}, torch.device("cpu"), kinds=("label_vae",))
    window = MainWindow(engines)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    settle(qtbot, window)
    return window


def test_play_draws_ten_alphas_in_two_seconds_with_surfaces_and_readouts(qtbot, real_window):
    window = real_window
    wait_for(qtbot, lambda: window.morph.path.complete, 120_000)
    drawn: list[tuple[float, int, float]] = []
    display = window.display
    show = display.show_morph

    def recording(output, request_id, context=True):
        show(output, request_id, context)
        if not window.morph_panel.playing:
            return  # the exact decode asked for when playback stops
        lv = window.views.heart.actor(1).GetMapper().GetInput()
        drawn.append((window.state.alpha, lv.GetNumberOfPoints(), output.phenotypes.lvedv_ml))

    display.show_morph = recording
    window.morph.path.drawn_alphas.clear()
    window.morph_panel.set_playing(True)
    qtbot.wait(2000)
    window.morph_panel.set_playing(False)
    alphas = {round(a, 3) for a in window.morph.path.drawn_alphas}
    assert len(alphas) >= 10, sorted(alphas)
    assert len(drawn) >= 10
    # the 3D view drew them (a render per frame on a GPU; llvmpipe on 2 cores is slower)
    assert window.views.heart.last_render_ms == window.views.heart.last_render_ms  # not NaN
    assert len({n for _, n, _ in drawn}) >= 5  # the LV surface changes
    assert len({round(v, 3) for _, _, v in drawn}) >= 5  # and so do the read-outs
    shown = window.display.morph
    assert window.views.readouts.values["lvedv_ml"] == pytest.approx(shown.phenotypes.lvedv_ml)


def test_vtk_keys_do_nothing_on_the_focused_3d_view(qtbot, window):
    heart = window.views.heart
    widget = heart.interactor
    _focus(qtbot, widget)
    props = heart.renderer.GetViewProps().GetNumberOfItems()
    for key in "pwsq3ej":
        qtbot.keyClick(widget, key)
    qtbot.wait(50)
    assert window.isVisible()
    assert not heart.is_finalized
    assert heart.render_window.GetStereoRender() == 0  # '3': no stereo
    for label in heart.structures:
        assert heart.actor(label).GetProperty().GetRepresentation() == 2  # surface, not 'w'
    assert heart.renderer.GetViewProps().GetNumberOfItems() == props  # 'p': no pick box
    assert heart.grab_pixels().any()  # still drawing


def test_app_shortcuts_work_with_focus_on_the_3d_view_and_on_a_slider(qtbot, window):
    heart = window.views.heart
    _focus(qtbot, heart.interactor)
    default = heart.camera()
    heart.renderer.GetActiveCamera().Azimuth(70)
    qtbot.keyClick(heart.interactor, Qt.Key.Key_R)
    np.testing.assert_allclose(heart.camera()["position"], default["position"], atol=1e-6)
    qtbot.keyClick(heart.interactor, Qt.Key.Key_Space)
    assert window.morph_panel.playing
    _focus(qtbot, window.morph_panel.alpha)
    qtbot.keyClick(window.morph_panel.alpha, Qt.Key.Key_Space)
    assert not window.morph_panel.playing
    settle(qtbot, window)


def test_small_screen_keeps_the_readouts_visible(qtbot, window):
    window.resize(1366, 768)
    qtbot.wait(100)
    QApplication.processEvents()
    assert window.width() <= 1366
    assert window.height() <= 768
    readouts = window.views.readouts
    assert readouts.isVisible()
    # every read-out is on screen in full, not behind a scroll bar
    assert readouts.visibleRegion().boundingRect() == readouts.rect()
    top_left = readouts.mapTo(window, readouts.rect().topLeft())
    assert window.rect().contains(top_left)
    assert window.rect().contains(readouts.mapTo(window, readouts.rect().bottomRight()))
    value = readouts.text("lvedv_ml")
    assert value.endswith("mL")
    assert value != "–"


def test_default_window_fits_the_screen(qtbot, window):
    window.fit_to_screen()
    free = window.screen().availableGeometry()
    assert window.width() <= free.width()
    assert window.height() <= free.height()
