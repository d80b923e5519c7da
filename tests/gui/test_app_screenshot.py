"""Screenshots hold the rendered heart (VTK's own pixels); ``--screenshot`` works end to end."""

from __future__ import annotations

import numpy as np
import pytest
from app_harness import open_window, tiny_checkpoints
from PySide6.QtCore import QPoint
from PySide6.QtGui import QImage

from cardio_explorer.app.cli import main
from cardio_explorer.app.gui import main as gui
from cardio_explorer.app.jobs.session import Session, write_session
from cardio_explorer.viewer.screenshot import qimage_to_pixels

pytestmark = pytest.mark.gui


def _not_blank(pixels: np.ndarray) -> float:
    """Fraction of pixels that differ clearly from the top-left (background) pixel."""
    distance = np.abs(pixels.astype(int) - pixels[0, 0].astype(int)).sum(axis=2)
    return float((distance > 60).mean())


def test_screenshot_3d_area_shows_the_heart(qtbot, tmp_path):
    window = open_window(qtbot)
    heart = window.views.heart
    vtk_pixels = heart.grab_pixels()
    assert _not_blank(vtk_pixels) > 0.02
    path = window.exports.save_screenshot(tmp_path / "shot.png")
    shot = qimage_to_pixels(QImage(str(path)))
    corner = heart.mapTo(window, QPoint(0, 0))
    ratio = window.devicePixelRatioF()
    y0, x0 = round(corner.y() * ratio), round(corner.x() * ratio)
    region = shot[y0 : y0 + vtk_pixels.shape[0], x0 : x0 + vtk_pixels.shape[1]]
    np.testing.assert_array_equal(region, vtk_pixels)


def _args(tmp_path):
    paths = tiny_checkpoints()
    return [
        "--screenshot",
        str(tmp_path / "app.png"),
        "--label-vae",
        str(paths["label_vae"]),
        "--cheart",
        str(paths["cheart"]),
        "--spade",
        str(paths["spade"]),
        "--device",
        "cpu",
        "--size",
        "1000x700",
    ]


def test_screenshot_option_writes_the_first_view_and_exits(tmp_path, capsys):
    assert main(_args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "first heart drawn" in out
    image = QImage(str(tmp_path / "app.png"))
    assert (image.width(), image.height()) == (1000, 700)
    assert _not_blank(qimage_to_pixels(image)) > 0.1


def test_screenshot_of_a_saved_session(qtbot, tmp_path):
    session = Session(checkpoints={}, controls={"alpha": 1.0, "phase": "ES"}, scene="morph")
    path = write_session(session, tmp_path / "s.json")
    assert gui.run([*_args(tmp_path), "--session", str(path)]) == 0
    assert (tmp_path / "app.png").is_file()


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert gui.run(["--size", "tiny", "--screenshot", str(tmp_path / "x.png")]) == 2
    assert "--size" in capsys.readouterr().err
