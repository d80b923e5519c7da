"""Pathology morph panel: subject, target group, phase, alpha (with play), sampling.

:class:`MorphPanel` only shows and edits :class:`AppState`; playing sweeps ``state.alpha``
one cached path step per frame (the controller draws each from the cached morph path).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cardio_explorer.app.gui.controllers.widgets import NoticeLabel, show_playing
from cardio_explorer.app.jobs.state import AppState

SPEEDS = {"0.5x": 0.5, "1x": 1.0, "2x": 2.0}
PLAY_TICK_MS = 40  # 25 frames/s, drawn from the cached morph path
ALPHA_PER_TICK = 0.05  # at 1x one cached step per frame: the whole morph in 0.8 s


class MorphPanel(QWidget):
    """Controls of the NOR -> pathology morph, bound to the app state."""

    playing_changed = Signal(bool)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.message = NoticeLabel()

        self.subject = QComboBox()
        self.subject.setToolTip("NOR subject of the latent atlas or of a loaded cohort")
        self.target = QComboBox()
        self.phase_ed, self.phase_es = QRadioButton("ED"), QRadioButton("ES")
        self._phases = QButtonGroup(self)
        self._phases.addButton(self.phase_ed)
        self._phases.addButton(self.phase_es)
        phase_row = QHBoxLayout()
        phase_row.addWidget(self.phase_ed)
        phase_row.addWidget(self.phase_es)
        phase_row.addStretch(1)

        self.alpha = QSlider(Qt.Orientation.Horizontal)
        self.alpha.setRange(0, 100)
        self.alpha.setPageStep(10)
        self.alpha_label = QLabel()
        self.alpha_label.setMinimumWidth(40)
        alpha_row = QHBoxLayout()
        alpha_row.addWidget(self.alpha, 1)
        alpha_row.addWidget(self.alpha_label)

        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.loop = QCheckBox("Loop")
        self.loop.setChecked(True)
        self.speed = QComboBox()
        self.speed.addItems(list(SPEEDS))
        self.speed.setCurrentText("1x")
        play_row = QHBoxLayout()
        for widget in (self.play, self.loop, self.speed):
            play_row.addWidget(widget)

        self.correlated = QCheckBox("Correlated sampling")
        self.correlated.setToolTip(
            "Correlate latent dimensions and slices (3D-consistent stacks); off: independent"
        )
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setKeyboardTracking(False)
        self.resample = QPushButton("Resample")
        self.resample.setToolTip("Draw a new pseudo-pathology sample (new seed)")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.resample)
        self.show_image = QCheckBox("Show image (SPADE)")

        self.controls = QWidget()
        form = QFormLayout(self.controls)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Subject", self.subject)
        form.addRow("Target", self.target)
        form.addRow("Phase", phase_row)
        form.addRow("Alpha", alpha_row)
        form.addRow("", play_row)
        form.addRow("", self.correlated)
        form.addRow("Seed", seed_row)
        form.addRow("", self.show_image)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.controls)
        layout.addStretch(1)

        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(PLAY_TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._direction = 1.0
        self._connect_widgets()
        state.subscribe(self._on_state)
        self._sync_all()

    # model -> widgets -----------------------------------------------------------------------
    def set_subjects(self, ids: Sequence[str], groups: Sequence[str | None]) -> None:
        """Fill the subject picker (id and group); keeps the state's subject when present."""
        self.subject.blockSignals(True)
        self.subject.clear()
        for sid, group in zip(ids, groups, strict=True):
            self.subject.addItem(f"{sid} ({group})" if group and group != "NOR" else sid, sid)
        self.subject.blockSignals(False)
        self._sync("subject_id", self.state.subject_id)

    def set_targets(self, groups: Sequence[str]) -> None:
        """Fill the target picker with the atlas's pathology groups."""
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems(list(groups))
        self.target.blockSignals(False)
        self._sync("target_group", self.state.target_group)

    def set_available(self, available: bool, message: str = "", spade: str = "") -> None:
        """Enable the controls, or show why they cannot work (model missing); SPADE note too."""
        self.controls.setEnabled(available)
        self.message.say(message)
        self.show_image.setEnabled(available and not spade)
        self.show_image.setToolTip(spade or "Labels -> MR-like image with the SPADE generator")

    def _on_state(self, name: str, value: Any) -> None:
        self._sync(name, value)

    def _sync_all(self) -> None:
        for name in ("subject_id", "target_group", "phase", "alpha", "correlated", "seed"):
            self._sync(name, self.state.get(name))
        self._sync("show_image", self.state.show_image)

    def _sync(self, name: str, value: Any) -> None:
        widgets = {
            "subject_id": self.subject,
            "target_group": self.target,
            "alpha": self.alpha,
            "correlated": self.correlated,
            "seed": self.seed,
            "show_image": self.show_image,
        }
        if name == "phase":
            for button in (self.phase_ed, self.phase_es):
                button.blockSignals(True)
            (self.phase_ed if value == "ED" else self.phase_es).setChecked(True)
            for button in (self.phase_ed, self.phase_es):
                button.blockSignals(False)
            return
        widget = widgets.get(name)
        if widget is None:
            return
        widget.blockSignals(True)
        try:
            if name == "subject_id":
                index = self.subject.findData(value)
                if index >= 0:
                    self.subject.setCurrentIndex(index)
            elif name == "target_group":
                index = self.target.findText(str(value))
                if index >= 0:
                    self.target.setCurrentIndex(index)
            elif name == "alpha":
                self.alpha.setValue(round(100 * value))
                self.alpha_label.setText(f"{round(100 * value)} %")
            elif name in ("correlated", "show_image"):
                widget.setChecked(bool(value))
            elif name == "seed":
                self.seed.setValue(int(value))
        finally:
            widget.blockSignals(False)

    # widgets -> model -----------------------------------------------------------------------
    def _connect_widgets(self) -> None:
        self.subject.currentIndexChanged.connect(self._subject_picked)
        self.target.currentTextChanged.connect(self._target_picked)
        self.phase_ed.toggled.connect(self._phase_picked)
        self.alpha.valueChanged.connect(self._alpha_moved)
        self.alpha.sliderReleased.connect(self.state.end_merge)
        self.correlated.toggled.connect(self._correlated_toggled)
        self.seed.valueChanged.connect(self._seed_changed)
        self.resample.clicked.connect(self.resample_seed)
        self.show_image.toggled.connect(self._show_image_toggled)
        self.play.toggled.connect(self.set_playing)

    def _subject_picked(self, index: int) -> None:
        if index >= 0:
            self.state.set("subject_id", self.subject.itemData(index))

    def _target_picked(self, text: str) -> None:
        if text:
            self.state.set("target_group", text)

    def _phase_picked(self, ed_checked: bool) -> None:
        self.state.set("phase", "ED" if ed_checked else "ES")

    def _alpha_moved(self, value: int) -> None:
        self.alpha_label.setText(f"{value} %")
        self.state.set("alpha", value / 100.0, merge=self.alpha.isSliderDown())

    def _correlated_toggled(self, checked: bool) -> None:
        self.state.set("correlated", checked)

    def _seed_changed(self, value: int) -> None:
        self.state.set("seed", value)

    def _show_image_toggled(self, checked: bool) -> None:
        self.state.set("show_image", checked)

    def resample_seed(self) -> None:
        """A new random seed: a new pseudo-pathology sample for the same target."""
        self.state.set("seed", random.randrange(2**31 - 1))

    # alpha playback -------------------------------------------------------------------------
    def set_playing(self, playing: bool) -> None:
        """Start or stop sweeping alpha (bouncing 0 <-> 1 with loop, else stopping at 1)."""
        show_playing(self.play, playing)
        if playing:
            if self.state.alpha >= 1.0 and not self.loop.isChecked():
                self.state.set("alpha", 0.0)
            self._direction = 1.0 if self.state.alpha < 1.0 else -1.0
            self._timer.start()
        else:
            self._timer.stop()
            self.state.end_merge()
        self.playing_changed.emit(bool(playing))

    @property
    def playing(self) -> bool:
        """True while alpha is being swept."""
        return self._timer.isActive()

    def _tick(self) -> None:
        step = ALPHA_PER_TICK * SPEEDS[self.speed.currentText()] * self._direction
        alpha = self.state.alpha + step
        if alpha >= 1.0 or alpha <= 0.0:
            alpha = min(1.0, max(0.0, alpha))
            if self.loop.isChecked():
                self._direction = -self._direction
            else:
                self.state.set("alpha", alpha, merge=True)
                self.set_playing(False)
                return
        self.state.set("alpha", alpha, merge=True)
