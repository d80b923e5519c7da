"""Screenshots of a window with its 3D pixels: QWidget.grab() never contains VTK's drawing."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QWidget

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write
from cardio_explorer.viewer.render_window import VtkCanvas


def pixels_to_qimage(pixels: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB array as a QImage that owns a copy of the pixels."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width, _ = pixels.shape
    return QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def qimage_to_pixels(image: QImage) -> np.ndarray:
    """A QImage as an (H, W, 3) uint8 RGB array."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : 3 * width].reshape(height, width, 3).copy()


def compose_screenshot(window: QWidget, canvases: Iterable[VtkCanvas] | None = None) -> QImage:
    """The window as drawn by Qt, with each visible VTK canvas's own pixels painted in its place.

    canvases: the VTK canvases to paint (default: every VtkCanvas inside ``window``).
    """
    if canvases is None:
        canvases = window.findChildren(VtkCanvas)
        if isinstance(window, VtkCanvas):
            canvases = [window, *canvases]
    shot = window.grab()
    ratio = shot.devicePixelRatio()
    image = shot.toImage().convertToFormat(QImage.Format.Format_RGB888)
    painter = QPainter(image)
    try:
        for canvas in canvases:
            if canvas.is_finalized or not canvas.isVisible():
                continue
            corner = canvas.mapTo(window, QPoint(0, 0)) if canvas is not window else QPoint(0, 0)
            target = QRect(
                round(corner.x() * ratio),
                round(corner.y() * ratio),
                round(canvas.width() * ratio),
                round(canvas.height() * ratio),
            )
            painter.drawImage(target, pixels_to_qimage(canvas.grab_pixels()))
    finally:
        painter.end()
    return image


def save_screenshot(
    window: QWidget, path: str | os.PathLike[str], canvases: Iterable[VtkCanvas] | None = None
) -> Path:
    """Write :func:`compose_screenshot` to an image file (format from the suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("png", "jpg", "jpeg", "bmp"):
        raise CardioInputError(str(path), "screenshot needs a .png, .jpg or .bmp name")
    if not path.parent.is_dir():
        raise CardioInputError(str(path), "folder does not exist")
    image = compose_screenshot(window, canvases)

    def write(temp: Path) -> None:
        if not image.save(str(temp)):  # format from the suffix
            raise CardioInputError(str(path), "could not write the image")

    atomic_write(path, write)
    return path
