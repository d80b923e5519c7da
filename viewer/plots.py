"""Read-out plots: volume-time curves, phenotypes along a morph, condition sweeps (GUI thread)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import LABEL_TABLE, Label

_BACKGROUND = (20, 22, 26)
_LV_RGB = LABEL_TABLE.rgb(Label.LV)
_RV_RGB = LABEL_TABLE.rgb(Label.RV)
SEX_COLOURS = {"F": (230, 110, 150), "M": (90, 160, 230)}
_CYCLE = [(230, 120, 40), (70, 190, 220), (200, 70, 200), (240, 200, 40), (120, 200, 120)]


def _curve(values: np.ndarray | None, n: int, what: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) != n:
        raise CardioInputError(what, f"expected {n} values, got {len(values)}")
    return values


class _PlotPanel(QWidget):
    """A QWidget holding one pyqtgraph PlotWidget with a legend."""

    def __init__(self, parent: QWidget | None, x_label: str, y_label: str) -> None:
        super().__init__(parent)
        self._plot = pg.PlotWidget(background=_BACKGROUND)
        self._plot.setMenuEnabled(False)
        self._plot.showGrid(x=True, y=True, alpha=0.15)
        self._plot.setLabel("bottom", x_label)
        self._plot.setLabel("left", y_label)
        self._legend = self._plot.addLegend(offset=(-8, 8), brush=(20, 22, 26, 200))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._plot)

    @property
    def plot_item(self) -> pg.PlotItem:
        """The pyqtgraph plot (for labels and tests)."""
        return self._plot.getPlotItem()

    def _clear_curves(self, items: list) -> None:
        for item in items:
            self._legend.removeItem(item)
            self._plot.removeItem(item)
        items.clear()


class VolumeCurveView(_PlotPanel):
    """LV and RV volume over the cardiac cycle with ED/ES markers and a draggable frame line.

    Signals: ``frame_selected(int)`` when the user drags the frame line to another frame.
    """

    frame_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "frame", "volume (mL)")
        self._items: list = []
        self._markers: list[pg.InfiniteLine] = []
        self._n_frames = 0
        self._frame_ms: float | None = None
        self._frame = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((255, 220, 0), width=2))
        self._frame.setVisible(False)
        self._frame.setZValue(20)
        self._frame.sigPositionChangeFinished.connect(self._on_frame_dragged)
        self._plot.addItem(self._frame)

    def set_curves(
        self,
        lv_ml: np.ndarray,
        rv_ml: np.ndarray | None = None,
        ed_frame: int | None = None,
        es_frame: int | None = None,
        frame_duration_ms: float | None = None,
    ) -> None:
        """Draw volumes (T,) per frame; x is time in ms when the frame duration is known."""
        lv = np.asarray(lv_ml, dtype=np.float64).ravel()
        rv = _curve(rv_ml, len(lv), "RV volumes")
        self._clear_curves(self._items)
        for marker in self._markers:
            self._plot.removeItem(marker)
        self._markers.clear()
        self._n_frames, self._frame_ms = len(lv), frame_duration_ms
        x = self._frame_x(np.arange(len(lv)))
        self._plot.setLabel("bottom", "time (ms)" if frame_duration_ms else "frame")
        for values, name, rgb in ((lv, "LV", _LV_RGB), (rv, "RV", _RV_RGB)):
            if values is not None:
                item = self._plot.plot(
                    x,
                    values,
                    pen=pg.mkPen(rgb, width=2),
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=rgb,
                    name=name,
                )
                self._items.append(item)
        for frame, text in ((ed_frame, "ED"), (es_frame, "ES")):
            if frame is not None:
                marker = pg.InfiniteLine(
                    pos=self._frame_x(frame),
                    angle=90,
                    movable=False,
                    pen=pg.mkPen((200, 200, 200), style=Qt.PenStyle.DashLine),
                    label=text,
                    labelOpts={"position": 0.95, "color": (220, 220, 220)},
                )
                self._plot.addItem(marker)
                self._markers.append(marker)
        self._frame.setBounds((self._frame_x(0), self._frame_x(max(len(lv) - 1, 0))))

    def _frame_x(self, frame):
        return frame * self._frame_ms if self._frame_ms else frame

    def set_frame(self, frame: int | None) -> None:
        """Move the current-frame line (None hides it); does not emit ``frame_selected``."""
        if frame is None:
            self._frame.setVisible(False)
            return
        self._frame.blockSignals(True)
        self._frame.setValue(self._frame_x(int(frame)))
        self._frame.blockSignals(False)
        self._frame.setVisible(True)

    def current_frame(self) -> int | None:
        """The frame under the line, or None when hidden."""
        if not self._frame.isVisible():
            return None
        x = self._frame.value()
        return round(x / self._frame_ms if self._frame_ms else x)

    def _on_frame_dragged(self) -> None:
        frame = self.current_frame()
        if frame is not None:
            frame = int(np.clip(frame, 0, max(self._n_frames - 1, 0)))
            self.set_frame(frame)  # snap to a whole frame
            self.frame_selected.emit(frame)


class PhenotypeAlphaView(QWidget):
    """Phenotypes along a morph (alpha 0-100 % on x) with a line at the current alpha.

    Phenotypes come in mL, % and g, so one axis cannot hold them: each curve is drawn as a
    percentage of its value at alpha 0, and its legend entry (beside the plot, never over the
    data) names the unit and the values at both ends, e.g. ``LVEDV (mL): 85 -> 213``.
    """

    def __init__(self, parent: QWidget | None = None, y_label: str | None = None) -> None:
        super().__init__(parent)
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setBackground(_BACKGROUND)
        self._plot = self._graphics.addPlot(row=0, col=0)
        self._plot.setMenuEnabled(False)
        self._plot.showGrid(x=True, y=True, alpha=0.15)
        self._plot.setLabel("bottom", "alpha (%)")
        self._plot.setLabel("left", y_label or "% of the value at alpha 0")
        self._legend = pg.LegendItem(brush=(20, 22, 26, 200), labelTextSize="8pt")
        self._graphics.addItem(self._legend, row=0, col=1)
        self._graphics.ci.layout.setColumnStretchFactor(0, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._graphics)
        self._items: list = []
        self._names: list[str] = []
        self._alpha = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((255, 220, 0), width=2))
        self._alpha.setVisible(False)
        self._plot.addItem(self._alpha)

    @property
    def plot_item(self) -> pg.PlotItem:
        """The pyqtgraph plot (for labels and tests)."""
        return self._plot

    @property
    def legend(self) -> pg.LegendItem:
        """The legend beside the plot."""
        return self._legend

    def set_curves(self, alphas: np.ndarray, curves: Mapping[str, np.ndarray]) -> None:
        """Draw named curves (K,) over alphas (K,) in 0-1 (shown as percent), normalised."""
        alphas = np.asarray(alphas, dtype=np.float64).ravel()
        for item in self._items:
            self._legend.removeItem(item)
            self._plot.removeItem(item)
        self._items.clear()
        self._names = []
        for i, (name, values) in enumerate(curves.items()):
            values = _curve(values, len(alphas), name)
            start = values[0]
            scale = 100.0 / start if np.isfinite(start) and abs(start) > 1e-9 else np.nan
            rgb = _CYCLE[i % len(_CYCLE)]
            item = self._plot.plot(100 * alphas, values * scale, pen=pg.mkPen(rgb, width=2))
            self._legend.addItem(item, f"{name}: {start:.0f} → {values[-1]:.0f}")
            self._items.append(item)
            self._names.append(name)

    def set_alpha(self, alpha: float | None) -> None:
        """Move the current-alpha line (alpha in 0-1; None hides it)."""
        if alpha is None:
            self._alpha.setVisible(False)
            return
        self._alpha.setValue(100.0 * float(alpha))
        self._alpha.setVisible(True)

    def curve_names(self) -> tuple[str, ...]:
        """Names of the drawn curves."""
        return tuple(self._names)

    def legend_texts(self) -> tuple[str, ...]:
        """The legend's entries (name, unit and the values at alpha 0 and 1)."""
        return tuple(label.text for _, label in self._legend.items)


@dataclass(frozen=True)
class SweepBand:
    """Mean and a 95 % band of one quantity over a condition sweep (arrays (K,))."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def from_samples(cls, samples: np.ndarray) -> SweepBand:
        """From samples (S, K): mean and the 2.5-97.5 percentile range at each sweep point."""
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[0] < 1:
            raise CardioInputError("sweep samples", f"expected (S, K), got {samples.shape}")
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
        return cls(samples.mean(axis=0), low, high)


class SweepView(_PlotPanel):
    """A condition sweep (e.g. age on x): mean line and 95 % band per sex."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, "condition", "value")
        self._items: list = []
        self._bands: list = []

    def set_sweep(
        self, x: np.ndarray, bands: Mapping[str, SweepBand], x_label: str, y_label: str
    ) -> None:
        """Draw one band per key of ``bands`` ('F', 'M' or any name) over x (K,)."""
        x = np.asarray(x, dtype=np.float64).ravel()
        self._clear_curves(self._items)
        for band in self._bands:
            self._plot.removeItem(band)
        self._bands.clear()
        self._plot.setLabel("bottom", x_label)
        self._plot.setLabel("left", y_label)
        for i, (name, band) in enumerate(bands.items()):
            mean, low, high = (_curve(v, len(x), name) for v in (band.mean, band.low, band.high))
            rgb = SEX_COLOURS.get(name, _CYCLE[i % len(_CYCLE)])
            low_item = pg.PlotDataItem(x, low, pen=pg.mkPen(*rgb, 90))
            high_item = pg.PlotDataItem(x, high, pen=pg.mkPen(*rgb, 90))
            fill = pg.FillBetweenItem(low_item, high_item, brush=pg.mkBrush(*rgb, 60))
            for item in (low_item, high_item, fill):
                self._plot.addItem(item)
                self._bands.append(item)
            self._items.append(self._plot.plot(x, mean, pen=pg.mkPen(rgb, width=2), name=name))

    def band_names(self) -> tuple[str, ...]:
        """Names of the drawn bands (legend order)."""
        return tuple(item.name() for item in self._items)
