"""The 3D camera re-frames when content of another extent arrives, and only then."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.volume import LabelVolume
from cardio_explorer.viewer.heart_view import HeartView
from cardio_explorer.viewer.surfaces import extract_surfaces

pytestmark = pytest.mark.gui


def _foreground_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    mask = np.abs(pixels.astype(int) - pixels[0, 0].astype(int)).sum(axis=2) > 30
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max(), cols.min(), cols.max()


def _shown_view(qtbot) -> HeartView:
    """A small 3D view, shown and exposed."""
    view = HeartView()
    qtbot.addWidget(view)
    view.resize(320, 240)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_camera_reframes_for_other_extents_only(qtbot, heart):
    view = _shown_view(qtbot)
    view.show_surfaces(extract_surfaces(heart))
    framed = view.camera()
    # a morph step: nearly the same heart, one voxel over; the camera stays put (no jumps)
    moved = LabelVolume(np.roll(heart.data, 1, axis=2), heart.affine)
    view.show_surfaces(extract_surfaces(moved))
    assert view.camera() == framed
    # a heart twice the size elsewhere (e.g. after Complete): framed anew, same direction
    big = LabelVolume.from_array(heart.data, (10.0, 3.0, 3.0), (200.0, -50.0, 80.0))
    view.show_surfaces(extract_surfaces(big))
    after = view.camera()
    assert after != framed
    old_dir = np.subtract(framed["focal_point"], framed["position"])
    new_dir = np.subtract(after["focal_point"], after["position"])
    cos = old_dir @ new_dir / np.linalg.norm(old_dir) / np.linalg.norm(new_dir)
    assert cos == pytest.approx(1.0, abs=1e-6)
    top, bottom, left, right = _foreground_box(view.grab_pixels())
    height, width = view.grab_pixels().shape[:2]
    assert top > 0
    assert left > 0
    assert bottom < height - 1
    assert right < width - 1


def _view_direction(camera: dict) -> np.ndarray:
    direction = np.subtract(camera["focal_point"], camera["position"])
    return direction / np.linalg.norm(direction)


def test_default_view_follows_an_oblique_stack_and_reframes_when_it_turns(qtbot, heart):
    view = _shown_view(qtbot)
    view.set_heart_axes(heart)
    view.show_surfaces(extract_surfaces(heart))
    straight = view.camera()
    # the same stack under a double-oblique header (a scanner's): the three-quarter view turns
    # with it, so the heart is seen from its side as before, not end-on
    angle = np.radians(50.0)
    turn = np.eye(4)
    turn[:3, :3] = np.array(
        [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    ) @ np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    oblique = LabelVolume(heart.data, turn @ heart.affine)
    view.set_heart_axes(oblique)
    view.show_surfaces(extract_surfaces(oblique))
    turned = view.camera()
    assert _view_direction(turned) == pytest.approx(turn[:3, :3] @ _view_direction(straight))
    # a later drawing of the same orientation keeps the camera (no reframing on every frame)
    view.set_heart_axes(oblique)
    view.show_surfaces(extract_surfaces(oblique))
    assert view.camera() == turned
