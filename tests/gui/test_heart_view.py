"""HeartView: real VTK pixels offscreen, per-structure controls, clip plane, camera state."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtWidgets import QApplication

from cardio_explorer.engine.labels import LABEL_TABLE, Label
from cardio_explorer.viewer.heart_view import HeartView, slice_plane
from cardio_explorer.viewer.surfaces import extract_surfaces

pytestmark = pytest.mark.gui


@pytest.fixture
def view(qtbot, heart) -> HeartView:
    widget = HeartView()
    qtbot.addWidget(widget)
    widget.resize(320, 240)
    widget.show()
    qtbot.waitExposed(widget)
    widget.show_surfaces(extract_surfaces(heart))
    return widget


def _foreground(pixels: np.ndarray) -> np.ndarray:
    return np.abs(pixels.astype(int) - pixels[0, 0].astype(int)).sum(axis=2) > 30


def _near(pixels: np.ndarray, rgb: tuple[int, int, int]) -> int:
    """Pixels whose hue is that of a label colour (shading changes brightness, not hue)."""
    p = pixels.astype(float) + 1.0
    target = np.asarray(rgb, float) + 1.0
    cos = (p @ target) / (np.linalg.norm(p, axis=2) * np.linalg.norm(target))
    return int(np.count_nonzero((cos > 0.98) & _foreground(pixels)))


def test_surfaces_render_real_pixels_and_hiding_a_structure_changes_them(view):
    pixels = view.grab_pixels()
    assert pixels.shape == (240, 320, 3)
    assert pixels.dtype == np.uint8
    assert _foreground(pixels).sum() > 0.05 * pixels.shape[0] * pixels.shape[1]
    rv_rgb = LABEL_TABLE.entries[Label.RV].rgb
    assert _near(pixels, rv_rgb) > 500
    view.set_visible(Label.RV, False)
    hidden = view.grab_pixels()
    assert not view.is_visible(Label.RV)
    assert _near(hidden, rv_rgb) < _near(pixels, rv_rgb) / 10
    assert _foreground(hidden).sum() < _foreground(pixels).sum()


def test_structure_controls_round_trip_and_redraw(view, qtbot):
    view.set_opacity(Label.MYO, 0.3)
    view.set_color(Label.LV, (255, 255, 0))
    assert view.opacity(Label.MYO) == pytest.approx(0.3)
    assert view.color(Label.LV) == (255, 255, 0)
    assert _near(view.grab_pixels(), (255, 255, 0)) > 100  # LV seen through a thin MYO
    with qtbot.waitSignal(view.rendered, timeout=2000) as blocker:
        view.set_opacity(Label.MYO, 2.0)  # clamped
    assert view.opacity(Label.MYO) == 1.0
    assert blocker.args[0] >= 0.0
    assert _near(view.grab_pixels(), (255, 255, 0)) == 0  # LV now hidden in an opaque MYO


def test_swapping_surfaces_changes_the_picture_but_keeps_the_camera(view, heart):
    before = view.grab_pixels()
    camera = view.camera()
    shifted = heart.with_data(np.roll(heart.data, 8, axis=2))
    view.show_surfaces(extract_surfaces(shifted))
    assert view.camera() == camera
    assert not np.array_equal(view.grab_pixels(), before)
    view.clear()
    assert _foreground(view.grab_pixels()).sum() == 0


def test_clip_plane_cuts_away_the_slices_below(view, heart):
    full = _foreground(view.grab_pixels()).sum()
    plane = slice_plane(heart, heart.spatial_shape[0] // 2)
    np.testing.assert_allclose(plane.normal, (0.0, 0.0, 1.0))
    view.set_clip_plane(plane)
    assert view.clip() == plane
    cut = view.grab_pixels()
    assert 0 < _foreground(cut).sum() != full
    # the side the normal points to (higher slices) stays
    view.set_clip_plane(slice_plane(heart, 1))
    assert _foreground(view.grab_pixels()).sum() > 0.9 * full
    view.set_clip_plane(slice_plane(heart, heart.spatial_shape[0] - 2))
    assert _foreground(view.grab_pixels()).sum() < 0.5 * full
    below = slice_plane(heart, heart.spatial_shape[0] - 2, keep="below")
    np.testing.assert_allclose(below.normal, (0.0, 0.0, -1.0))
    view.set_clip_plane(below)
    assert _foreground(view.grab_pixels()).sum() > 0.9 * full
    view.set_clip(False)
    assert view.clip() is None
    assert _foreground(view.grab_pixels()).sum() == full


def test_camera_state_is_json_and_restores(view):
    state = view.camera()
    json.dumps(state)
    reference = view.grab_pixels()
    view.renderer.GetActiveCamera().Azimuth(70)
    assert not np.array_equal(view.grab_pixels(), reference)
    view.set_camera(json.loads(json.dumps(state)))
    np.testing.assert_allclose(view.camera()["position"], state["position"])
    np.testing.assert_array_equal(view.grab_pixels(), reference)
    view.renderer.GetActiveCamera().Azimuth(70)
    view.reset_camera()
    np.testing.assert_allclose(view.camera()["focal_point"], state["focal_point"], atol=1e-6)


def test_finalised_view_draws_nothing_and_refuses_to_read_pixels(view):
    view.close()
    assert view.is_finalized
    assert view.render() is False
    view.set_opacity(Label.LV, 0.5)  # must not touch the released window
    with pytest.raises(RuntimeError, match="finalised"):
        view.grab_pixels()


def test_several_changes_draw_once(view, qtbot):
    qtbot.wait(10)  # let the draw queued by show_surfaces happen first
    drawn: list[float] = []
    view.rendered.connect(drawn.append)
    view.set_opacity(Label.LV, 0.5)
    view.set_color(Label.RV, (10, 200, 10))
    view.set_visible(Label.MYO, False)
    assert drawn == []  # nothing drawn synchronously
    qtbot.waitUntil(lambda: len(drawn) == 1, timeout=2000)
    qtbot.wait(20)
    assert len(drawn) == 1


def test_left_drag_rotates_the_camera(view, qtbot):
    before = view.camera()
    widget = view.interactor
    centre = widget.rect().center()
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, pos=centre)
    for step in range(1, 6):
        qtbot.mouseMove(widget, centre + QPoint(12 * step, 4 * step))
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=centre + QPoint(60, 20))
    after = view.camera()
    assert not np.allclose(after["position"], before["position"])
    np.testing.assert_allclose(after["focal_point"], before["focal_point"])  # trackball orbit


def test_deleted_widget_still_finalises_cleanly(qtbot, heart):
    view = HeartView()
    view.show_surfaces(extract_surfaces(heart))
    view.grab_pixels()
    view.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    view.finalize()  # the Python side outlives the Qt side: no RuntimeError
