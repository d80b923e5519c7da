"""3D view controls: per-structure visibility, opacity and colour, smoothing, clip, reset."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from cardio_explorer.app.gui.display import Display
from cardio_explorer.app.jobs.state import AppState
from cardio_explorer.engine.labels import LABEL_TABLE
from cardio_explorer.viewer.heart_view import HeartView


class SurfaceControls(QGroupBox):
    """Visibility / opacity / colour per structure, smoothing (state), slice clip, reset view."""

    def __init__(
        self, heart: HeartView, display: Display, state: AppState, parent: QWidget | None = None
    ) -> None:
        super().__init__("Surfaces", parent)
        self.heart, self.display, self.state = heart, display, state
        grid = QGridLayout(self)
        self.visible: dict[int, QCheckBox] = {}
        self.opacity: dict[int, QSlider] = {}
        self.colour: dict[int, QPushButton] = {}
        for row, value in enumerate(heart.structures):
            box = QCheckBox(LABEL_TABLE.name(value).upper())
            box.setChecked(heart.is_visible(value))
            box.toggled.connect(lambda on, v=value: self.heart.set_visible(v, on))
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setValue(round(100 * heart.opacity(value)))
            slider.setToolTip("opacity")
            slider.valueChanged.connect(lambda o, v=value: self.heart.set_opacity(v, o / 100.0))
            button = QPushButton()
            button.setMaximumWidth(28)
            button.setToolTip("colour")
            button.clicked.connect(lambda _=False, v=value: self.pick_colour(v))
            grid.addWidget(box, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(button, row, 2)
            self.visible[value], self.opacity[value], self.colour[value] = box, slider, button
            self._paint_button(value)
        row = len(heart.structures)
        self.smoothing = QSpinBox()
        self.smoothing.setRange(0, 50)
        self.smoothing.setValue(state.smoothing)
        self.smoothing.setKeyboardTracking(False)
        self.smoothing.valueChanged.connect(lambda v: self.state.set("smoothing", v))
        grid.addWidget(QLabel("Smoothing"), row, 0)
        grid.addWidget(self.smoothing, row, 1, 1, 2)
        self.clip = QCheckBox("Clip at the shown slice")
        self.clip.toggled.connect(self.display.set_clip)
        self.reset = QPushButton("Reset view (R)")
        self.reset.clicked.connect(self.heart.reset_camera)
        grid.addWidget(self.clip, row + 1, 0, 1, 3)
        grid.addWidget(self.reset, row + 2, 0, 1, 3)
        state.subscribe(self._on_state)

    def pick_colour(self, value: int) -> None:
        """Ask for a structure's colour."""
        chosen = QColorDialog.getColor(QColor(*self.heart.color(value)), self, "Structure colour")
        if chosen.isValid():
            self.heart.set_color(value, (chosen.red(), chosen.green(), chosen.blue()))
            self._paint_button(value)

    def _paint_button(self, value: int) -> None:
        r, g, b = self.heart.color(value)
        self.colour[value].setStyleSheet(f"background: rgb({r}, {g}, {b});")

    def _on_state(self, name: str, value: object) -> None:
        if name == "smoothing":
            self.smoothing.blockSignals(True)
            self.smoothing.setValue(int(value))
            self.smoothing.blockSignals(False)
