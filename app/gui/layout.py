"""The main window's arrangement: controls and read-outs left, 3D centre, slices right, latent
view and plots below; every part on a splitter, so any screen down to 1366 x 768 shows all."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

DEFAULT_SIZE = (1400, 900)


def build_central(window: Any) -> tuple[QTabWidget, QTabWidget, QSplitter]:
    """(control tabs, plot tabs, the central splitter) from the window's panels and views."""
    views = window.views
    tabs = QTabWidget()
    # each tab says which model it drives
    tabs.addTab(window.morph_panel, "Morph (label VAE)")
    tabs.addTab(window.conditions_panel, "Conditions (CHeart)")
    tabs.addTab(window.surface_controls, "3D view")
    # the controls scroll when the screen is short; the read-outs below them never do
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(tabs)
    left = QWidget()
    left.setMinimumWidth(380)
    left_layout = QVBoxLayout(left)
    left_layout.setContentsMargins(0, 0, 0, 0)
    left_layout.addWidget(scroll, 1)
    left_layout.addWidget(views.readouts)

    centre = QWidget()
    centre_layout = QVBoxLayout(centre)
    centre_layout.setContentsMargins(0, 0, 0, 0)
    centre_layout.addWidget(views.heart, 1)
    centre_layout.addWidget(window.playback)

    slices = QSplitter(Qt.Orientation.Vertical)
    slices.addWidget(views.slice)
    slices.addWidget(views.long_axis)

    top = QSplitter(Qt.Orientation.Horizontal)
    top.addWidget(left)
    top.addWidget(centre)
    top.addWidget(slices)
    top.setStretchFactor(1, 3)
    top.setStretchFactor(2, 2)
    top.setSizes([390, 600, 410])

    plots = QTabWidget()
    plots.addTab(views.alpha_curve, "Phenotype vs alpha")
    plots.addTab(views.volume_curve, "Volume curve")
    plots.addTab(views.sweep, "Condition sweep")
    bottom = QSplitter(Qt.Orientation.Horizontal)
    bottom.addWidget(views.latent)
    bottom.addWidget(plots)
    bottom.setSizes([700, 700])

    main = QSplitter(Qt.Orientation.Vertical)
    main.addWidget(top)
    main.addWidget(bottom)
    main.setStretchFactor(0, 3)
    main.setStretchFactor(1, 2)
    main.setSizes([560, 300])
    return tabs, plots, main


def fit_to_screen(widget: QWidget, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]):
    """Resize to ``width`` x ``height``, or to the screen's free area where that is smaller."""
    screen = widget.screen() or QApplication.primaryScreen()
    if screen is not None:
        free = screen.availableGeometry()
        width, height = min(width, free.width()), min(height, free.height())
    widget.resize(width, height)
