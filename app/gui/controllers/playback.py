"""4D playback: frame slider, play / pause at the sequence's true frame rate, loop, ED/ES marks.

The bar only moves ``state.frame``; the display draws every view on that frame from surfaces
prepared once by the worker, so a playing frame costs a mapper swap and a render.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from cardio_explorer.app.gui.controllers.widgets import show_playing
from cardio_explorer.app.jobs.state import AppState

DEFAULT_FRAME_MS = 50.0


class PlaybackBar(QWidget):
    """Frame slider with play / pause, loop and ED / ES jumps, bound to ``state.frame``."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.loop = QCheckBox("Loop")
        self.loop.setChecked(True)
        self.ed_button = QPushButton("ED")
        self.es_button = QPushButton("ES")
        self.label = QLabel("no sequence")
        self.label.setMinimumWidth(170)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        for widget in (self.play, self.ed_button, self.es_button):
            widget.setMaximumWidth(60)
            layout.addWidget(widget)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.loop)
        layout.addWidget(self.label)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self.n_frames = 0
        self.frame_ms = DEFAULT_FRAME_MS
        self.ed_frame = 0
        self.es_frame: int | None = None
        self._tick_times: list[float] = []
        self.play.toggled.connect(self.set_playing)
        self.slider.valueChanged.connect(self._slider_moved)
        self.ed_button.clicked.connect(lambda: self.state.set("frame", self.ed_frame))
        self.es_button.clicked.connect(self._to_es)
        state.subscribe(self._on_state)
        self.setEnabled(False)

    def set_sequence(
        self, n_frames: int, frame_ms: float | None, ed_frame: int = 0, es_frame: int | None = None
    ) -> None:
        """A new sequence: its length, frame duration (ms) and ED / ES frames."""
        self.n_frames = int(n_frames)
        self.frame_ms = float(frame_ms) if frame_ms else DEFAULT_FRAME_MS
        self.ed_frame, self.es_frame = int(ed_frame), es_frame
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(self.n_frames - 1, 0))
        self.slider.setValue(min(self.state.frame, max(self.n_frames - 1, 0)))
        self.slider.blockSignals(False)
        self._timer.setInterval(max(1, round(self.frame_ms)))
        self.setEnabled(self.n_frames > 1)
        self._update_label(self.state.frame)

    # playing --------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        """True while frames advance."""
        return self._timer.isActive()

    def toggle(self) -> None:
        """Play when paused, pause when playing."""
        self.set_playing(not self.playing)

    def set_playing(self, playing: bool) -> None:
        """Start or stop advancing one frame per frame duration."""
        playing = bool(playing) and self.n_frames > 1
        show_playing(self.play, playing)
        if playing:
            self._tick_times.clear()
            self._timer.start()
        else:
            self._timer.stop()

    def measured_fps(self) -> float | None:
        """Frames per second actually played over the last ticks (None before two ticks)."""
        if len(self._tick_times) < 2:
            return None
        span = self._tick_times[-1] - self._tick_times[0]
        return (len(self._tick_times) - 1) / span if span > 0 else None

    def _tick(self) -> None:
        self._tick_times = [*self._tick_times[-40:], time.perf_counter()]
        frame = self.state.frame + 1
        if frame >= self.n_frames:
            if not self.loop.isChecked():
                self.set_playing(False)
                return
            frame = 0
        self.state.set("frame", frame)

    # binding --------------------------------------------------------------------------------
    def _to_es(self) -> None:
        if self.es_frame is not None:
            self.state.set("frame", self.es_frame)

    def _slider_moved(self, value: int) -> None:
        self.state.set("frame", value)

    def _on_state(self, name: str, value: Any) -> None:
        if name != "frame":
            return
        self.slider.blockSignals(True)
        self.slider.setValue(int(value))
        self.slider.blockSignals(False)
        self._update_label(int(value))

    def _update_label(self, frame: int) -> None:
        if self.n_frames == 0:
            self.label.setText("no sequence")
            return
        mark = " ED" if frame == self.ed_frame else " ES" if frame == self.es_frame else ""
        es = "–" if self.es_frame is None else self.es_frame + 1
        self.label.setText(
            f"frame {frame + 1}/{self.n_frames}{mark} · ED {self.ed_frame + 1} ES {es} · "
            f"{1000.0 / self.frame_ms:.0f} fps"
        )
