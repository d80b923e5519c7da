"""Screenshots contain the VTK pixels, which QWidget.grab() alone never does."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.viewer.heart_view import HeartView
from cardio_explorer.viewer.screenshot import (
    compose_screenshot,
    pixels_to_qimage,
    qimage_to_pixels,
    save_screenshot,
)
from cardio_explorer.viewer.surfaces import extract_surfaces

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, heart):
    window = QWidget()
    layout = QHBoxLayout(window)
    layout.addWidget(QLabel("controls"))
    window.heart_view = HeartView()
    layout.addWidget(window.heart_view, 1)
    qtbot.addWidget(window)
    window.resize(400, 220)
    window.show()
    qtbot.waitExposed(window)
    window.heart_view.show_surfaces(extract_surfaces(heart))
    return window


def test_pixel_conversions_round_trip(rng):
    pixels = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(qimage_to_pixels(pixels_to_qimage(pixels)), pixels)


def test_composed_screenshot_holds_the_vtk_pixels_in_the_canvas_rect(window):
    canvas = window.heart_view
    vtk_pixels = canvas.grab_pixels()
    assert np.abs(vtk_pixels.astype(int) - vtk_pixels[0, 0]).sum(axis=2).max() > 60
    shot = qimage_to_pixels(compose_screenshot(window))
    assert shot.shape[:2] == (window.height(), window.width())
    corner = canvas.mapTo(window, QPoint(0, 0))
    region = shot[
        corner.y() : corner.y() + canvas.height(), corner.x() : corner.x() + canvas.width()
    ]
    np.testing.assert_array_equal(region, vtk_pixels)
    # outside the canvas the picture is Qt's own
    plain = qimage_to_pixels(window.grab().toImage())
    np.testing.assert_array_equal(shot[:, : corner.x()], plain[:, : corner.x()])


def test_save_screenshot_writes_the_composed_image(window, tmp_path):
    path = save_screenshot(window, tmp_path / "shot.png")
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["shot.png"]
    loaded = qimage_to_pixels(QImage(str(path)))
    np.testing.assert_array_equal(loaded, qimage_to_pixels(compose_screenshot(window)))
    with pytest.raises(CardioInputError, match=r"\.png"):
        save_screenshot(window, tmp_path / "shot.gif")
    with pytest.raises(CardioInputError, match="folder does not exist"):
        save_screenshot(window, tmp_path / "missing" / "shot.png")
