"""Latent space view: the cohort's 2D-embedded codes by group, a path on top, the current point.

The embedding itself (t-SNE, PCA) is computed elsewhere; this view only draws (N, 2) points.
GUI thread only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cardio_explorer.engine.errors import CardioInputError

GROUP_COLOURS: dict[str, tuple[int, int, int]] = {
    "NOR": (150, 150, 150),
    "DCM": (230, 120, 40),
    "HCM": (200, 70, 200),
    "MINF": (240, 200, 40),
    "ARV": (70, 190, 220),
}
OTHER_COLOUR = (120, 200, 120)


class LatentView(QWidget):
    """Scatter of cohort codes coloured by group, with a path and the current point on top.

    Signals: ``subject_clicked(str)`` with the id of a clicked cohort point.
    """

    subject_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None, point_size: float = 8.0) -> None:
        super().__init__(parent)
        # the legend has its own column beside the plot, so it never covers a point
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setBackground((20, 22, 26))
        self._plot = self._graphics.addPlot(row=0, col=0)
        self._plot.setMenuEnabled(False)
        self._plot.showGrid(x=True, y=True, alpha=0.15)
        self._plot.setLabel("bottom", "embedding 1")
        self._plot.setLabel("left", "embedding 2")
        self._legend = pg.LegendItem(brush=(20, 22, 26, 200), labelTextSize="8pt")
        self._graphics.addItem(self._legend, row=0, col=1)
        self._graphics.ci.layout.setColumnStretchFactor(0, 5)
        self._title = ""
        self._status = ""
        self._point_size = point_size
        self._groups: dict[str, pg.ScatterPlotItem] = {}
        self._points = np.zeros((0, 2))
        self._ids: list[str] = []
        self._path = pg.PlotDataItem(
            pen=pg.mkPen((255, 255, 255), width=2),
            symbol="o",
            symbolSize=4,
            symbolBrush=(255, 255, 255),
        )
        self._current = pg.ScatterPlotItem(
            size=18, symbol="star", brush=pg.mkBrush(255, 60, 60), pen=pg.mkPen("w", width=1.5)
        )
        self._path.setZValue(10)
        self._current.setZValue(20)
        self._plot.addItem(self._path)
        self._plot.addItem(self._current)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._graphics)

    @property
    def plot_item(self) -> pg.PlotItem:
        """The pyqtgraph plot (for axis labels and tests)."""
        return self._plot

    @property
    def legend(self) -> pg.LegendItem:
        """The group legend beside the plot."""
        return self._legend

    def set_title(self, title: str) -> None:
        """The pane's title (above the plot)."""
        self._title = title
        self._show_title()

    def set_status(self, text: str) -> None:
        """A note after the title, e.g. while a layout is being computed ('' clears it)."""
        self._status = text
        self._show_title()

    @property
    def status(self) -> str:
        """The note shown after the title."""
        return self._status

    def _show_title(self) -> None:
        text = " · ".join(t for t in (self._title, self._status) if t)
        self._plot.setTitle(text or None, color="#e0e0e0", size="9pt")

    def set_axis_labels(self, x: str, y: str) -> None:
        """Axis titles, e.g. 't-SNE 1' / 't-SNE 2' or 'PC 1' / 'PC 2'."""
        self._plot.setLabel("bottom", x)
        self._plot.setLabel("left", y)

    def set_cohort(
        self, points: np.ndarray, groups: Sequence[str], subject_ids: Sequence[str]
    ) -> None:
        """Draw N cohort points (N, 2) with their group names and subject ids."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise CardioInputError("latent points", f"expected (N, 2), got {points.shape}")
        if not (len(groups) == len(subject_ids) == len(points)):
            raise CardioInputError(
                "latent points",
                f"{len(points)} points, {len(groups)} groups, {len(subject_ids)} ids differ",
            )
        for item in self._groups.values():
            self._legend.removeItem(item)
            self._plot.removeItem(item)
        self._groups.clear()
        self._points, self._ids = points, [str(s) for s in subject_ids]
        group_array = np.asarray([str(g) for g in groups])
        order = [g for g in GROUP_COLOURS if g in group_array]
        order += sorted(set(group_array.tolist()) - set(order))
        for group in order:
            rows = np.flatnonzero(group_array == group)
            colour = GROUP_COLOURS.get(group, OTHER_COLOUR)
            item = pg.ScatterPlotItem(
                x=points[rows, 0],
                y=points[rows, 1],
                data=[self._ids[r] for r in rows],
                size=self._point_size,
                brush=pg.mkBrush(*colour, 200),
                pen=pg.mkPen(0, 0, 0, 120),
                hoverable=True,
                tip=lambda x, y, data: str(data),
                name=group,
            )
            item.sigClicked.connect(self._on_points_clicked)
            self._plot.addItem(item)
            self._legend.addItem(item, group)
            self._groups[group] = item
        self._plot.autoRange()

    def set_path(self, path: np.ndarray | None) -> None:
        """Draw an (M, 2) path (morph path or heartbeat trajectory); None clears it."""
        if path is None or len(path) == 0:
            self._path.setData([], [])
            return
        path = np.asarray(path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2:
            raise CardioInputError("latent path", f"expected (M, 2), got {path.shape}")
        self._path.setData(path[:, 0], path[:, 1])

    def set_current(self, point: Sequence[float] | np.ndarray | None) -> None:
        """Highlight the current point (2,); None hides it."""
        if point is None:
            self._current.setData([], [])
            return
        x, y = (float(v) for v in np.asarray(point, dtype=np.float64).ravel()[:2])
        self._current.setData([x], [y])

    def current_point(self) -> tuple[float, float] | None:
        """The highlighted point, or None."""
        xs, ys = self._current.getData()
        return None if len(xs) == 0 else (float(xs[0]), float(ys[0]))

    def groups(self) -> tuple[str, ...]:
        """Groups in the legend, in drawing order."""
        return tuple(self._groups)

    def subject_point(self, subject_id: str) -> tuple[float, float]:
        """Plot coordinates of one subject's point."""
        row = self._ids.index(subject_id)
        return (float(self._points[row, 0]), float(self._points[row, 1]))

    def group_item(self, group: str) -> pg.ScatterPlotItem:
        """The scatter item of one group (for tests)."""
        return self._groups[group]

    def _on_points_clicked(self, _item: pg.ScatterPlotItem, points, _event=None) -> None:
        # pyqtgraph passes the spots under the cursor, the one drawn on top first
        if len(points):
            self.subject_clicked.emit(str(points[0].data()))
