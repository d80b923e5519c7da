"""Fixtures for the Qt/VTK widget tests: a synthetic heart and window teardown."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QSettings
from PySide6.QtWidgets import QApplication

from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.volume import ImageVolume, LabelVolume


def heart_labels(
    shape_zyx: tuple[int, int, int] = (16, 64, 64), rv_shift: float = 0.0
) -> np.ndarray:
    """Heart-like labels: concentric LV/MYO ellipsoids and an RV crescent offset along +x."""
    nz, ny, nx = shape_zyx
    z, y, x = np.mgrid[:nz, :ny, :nx].astype(np.float64)
    cz, cy, cx = (nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2 - nx * 0.08
    r_lv = np.sqrt(
        ((x - cx) / (nx * 0.16)) ** 2
        + ((y - cy) / (ny * 0.16)) ** 2
        + ((z - cz) / (nz * 0.38)) ** 2
    )
    labels = np.zeros(shape_zyx, np.uint8)
    labels[r_lv < 1.0] = Label.MYO
    labels[r_lv < 0.7] = Label.LV
    r_rv = np.sqrt(
        ((x - cx - nx * (0.2 + rv_shift)) / (nx * 0.12)) ** 2
        + ((y - cy) / (ny * 0.2)) ** 2
        + ((z - cz) / (nz * 0.34)) ** 2
    )
    labels[(r_rv < 1.0) & (labels == 0)] = Label.RV
    return labels


def oblique_affine(spacing_xyz=(1.5, 1.5, 4.0), origin=(-40.0, 12.0, 30.0)) -> np.ndarray:
    """A non-axis-aligned NIfTI affine: rotated about two axes, with a reflection."""
    a, b = np.deg2rad(25.0), np.deg2rad(-35.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag([-1.0, 1.0, 1.0]) @ np.diag(spacing_xyz)
    affine[:3, 3] = origin
    return affine


@pytest.fixture
def make_heart():
    """Factory: heart-like label array (z, y, x) of a given shape."""
    return heart_labels


@pytest.fixture
def oblique_heart(heart: LabelVolume) -> LabelVolume:
    """The heart fixture's labels on a rotated, mirrored grid."""
    return LabelVolume(heart.data, oblique_affine(), name="oblique")


@pytest.fixture
def heart() -> LabelVolume:
    """A small 3D heart-like label volume (16 x 64 x 64, 5 x 1.5 x 1.5 mm)."""
    return LabelVolume.from_array(heart_labels(), (5.0, 1.5, 1.5), (10.0, -20.0, 5.0), name="heart")


@pytest.fixture
def heart_image(heart: LabelVolume) -> ImageVolume:
    """An MR-like image of the heart fixture: bright blood, dark myocardium, in [-1, 1]."""
    grey = np.array([-0.6, 0.8, -0.2, 0.6], np.float32)[heart.data]
    noise = np.random.default_rng(0).normal(0, 0.05, heart.data.shape).astype(np.float32)
    return ImageVolume(np.clip(grey + noise, -1, 1), heart.affine, name="image")


@pytest.fixture(autouse=True)
def _own_settings(tmp_path):
    """Recent hearts and preferences go to a settings file of the test, never the user's."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "cfg"))


@pytest.fixture(autouse=True)
def _close_windows(qapp):
    """Close (and so finalise) every top-level window a test leaves open."""
    yield
    from cardio_explorer.viewer.render_window import finalize_all_canvases

    for widget in qapp.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    finalize_all_canvases()
    # delete the widgets now, not in the interpreter's final garbage collection, where
    # PySide6 + pyqtgraph objects freed in arbitrary order can abort the process
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qapp.processEvents()
    gc.collect()
