"""Anatomical aids: patient-direction letters and a scale bar on 2D planes; in 3D an orientation
marker, a pane title and the label legend. Directions are read from the volume's affine, whose
world frame is NIfTI's RAS+ (+x Right, +y Anterior, +z Superior). GUI thread only."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QWidget
from vtkmodules.vtkInteractionWidgets import vtkOrientationMarkerWidget
from vtkmodules.vtkRenderingAnnotation import vtkAxesActor
from vtkmodules.vtkRenderingCore import vtkTextActor

from cardio_explorer.engine.labels import LABEL_TABLE, Label, LabelTable

_POSITIVE, _NEGATIVE = "RAS", "LPI"
SCALE_STEPS_MM = (5.0, 10.0, 20.0, 50.0, 100.0)
_LETTER_COLOUR = (255, 235, 150)


def direction_letter(direction: np.ndarray, second: float = 0.5) -> str:
    """The patient directions a world vector points to: R, L, A, P, S or I, the strongest
    first; an oblique one gets a second letter (e.g. 'AS') where that component is at least
    ``second`` of the strongest."""
    d = np.asarray(direction, dtype=np.float64)[:3]
    size = np.abs(d)
    order = [int(i) for i in np.argsort(-size, kind="stable")[:2]]
    kept = [i for i in order if size[i] >= second * size[order[0]]]
    return "".join(_POSITIVE[i] if d[i] >= 0 else _NEGATIVE[i] for i in kept)


def scale_length_mm(width_mm: float) -> float:
    """A round scale-bar length about a fifth of the plane's width."""
    target = width_mm / 5.0
    return max([s for s in SCALE_STEPS_MM if s <= target] or [SCALE_STEPS_MM[0]])


class PlaneAids:
    """Letters at the four edges of a 2D plane, a scale bar and a title, in one view box."""

    def __init__(self, view_box: pg.ViewBox, graphics: QWidget, title: str = "") -> None:
        self._view_box = view_box
        self._letters = {
            edge: pg.TextItem("", color=_LETTER_COLOUR, anchor=anchor)
            for edge, anchor in (
                ("left", (0.0, 0.5)),
                ("right", (1.0, 0.5)),
                ("top", (0.5, 0.0)),
                ("bottom", (0.5, 1.0)),
            )
        }
        for item in self._letters.values():
            item.setZValue(30)
            view_box.addItem(item)
        self._bar = pg.PlotDataItem(pen=pg.mkPen((240, 240, 240), width=3))
        self._bar_text = pg.TextItem("", color=(240, 240, 240), anchor=(0.0, 1.0))
        for item in (self._bar, self._bar_text):
            item.setZValue(30)
            view_box.addItem(item)
        self.title = QLabel(title, graphics)
        self.title.setStyleSheet(
            "color: #e0e0e0; background: rgba(20, 22, 26, 170); padding: 1px 4px;"
        )
        self.title.move(4, 4)
        self.title.setVisible(bool(title))
        self.scale_mm = 0.0

    def set_title(self, text: str) -> None:
        """The pane's title in its top-left corner."""
        self.title.setText(text)
        self.title.adjustSize()
        self.title.setVisible(bool(text))

    def letters(self) -> dict[str, str]:
        """The letter at each edge ('left', 'right', 'top', 'bottom')."""
        return {edge: item.textItem.toPlainText() for edge, item in self._letters.items()}

    def update(
        self, width_mm: float, height_mm: float, across: np.ndarray, down: np.ndarray
    ) -> None:
        """Place letters just inside the edges of a plane whose columns run along world
        ``across`` and rows along ``down``; a scale bar in its bottom-left corner. Zero size
        hides everything."""
        shown = width_mm > 0 and height_mm > 0
        for item in (*self._letters.values(), self._bar, self._bar_text):
            item.setVisible(shown)
        if not shown:
            return
        across, down = np.asarray(across, float), np.asarray(down, float)
        placement = {
            "left": (-across, (0.0, height_mm / 2)),
            "right": (across, (width_mm, height_mm / 2)),
            "top": (-down, (width_mm / 2, 0.0)),
            "bottom": (down, (width_mm / 2, height_mm)),
        }
        for edge, (direction, (x, y)) in placement.items():
            self._letters[edge].setText(direction_letter(direction))
            self._letters[edge].setPos(x, y)
        length = scale_length_mm(width_mm)
        x0, y0 = 0.04 * width_mm, 0.9 * height_mm
        self._bar.setData([x0, x0 + length], [y0, y0])
        self._bar_text.setText(f"{length:.0f} mm")
        self._bar_text.setPos(x0, y0)
        self.scale_mm = length


class HeartAids:
    """An orientation marker (axes labelled R, A, S), a title and the label legend in 3D."""

    def __init__(self, canvas, title: str = "", label_table: LabelTable = LABEL_TABLE) -> None:
        self._canvas = canvas
        axes = vtkAxesActor()
        axes.SetXAxisLabelText("R")
        axes.SetYAxisLabelText("A")
        axes.SetZAxisLabelText("S")
        axes.SetTotalLength(1.0, 1.0, 1.0)
        axes.SetShaftTypeToCylinder()
        for caption in (
            axes.GetXAxisCaptionActor2D(),
            axes.GetYAxisCaptionActor2D(),
            axes.GetZAxisCaptionActor2D(),
        ):
            caption.GetCaptionTextProperty().SetFontSize(14)
            caption.GetCaptionTextProperty().BoldOn()
        self.axes = axes
        self.marker = vtkOrientationMarkerWidget()
        self.marker.SetOrientationMarker(axes)
        self.marker.SetViewport(0.0, 0.0, 0.18, 0.24)
        self._marker_on = False
        self.title = vtkTextActor()
        self.title.SetInput(title)
        self.title.GetTextProperty().SetFontSize(14)
        self.title.GetTextProperty().SetColor(0.88, 0.88, 0.88)
        self.title.SetDisplayPosition(8, 8)
        self.title.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        self.title.SetPosition(0.01, 0.95)
        canvas.renderer.AddViewProp(self.title)
        self.legend: list[vtkTextActor] = []
        entries = [e for e in label_table.entries if e.value != Label.BACKGROUND]
        for row, entry in enumerate(entries):
            text = vtkTextActor()
            text.SetInput(f"■ {entry.description}")
            prop = text.GetTextProperty()
            prop.SetFontSize(13)
            prop.SetColor(*(c / 255.0 for c in entry.rgb))
            prop.SetJustificationToRight()
            text.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
            text.SetPosition(0.99, 0.02 + 0.05 * (len(entries) - 1 - row))
            canvas.renderer.AddViewProp(text)
            self.legend.append(text)
        canvas.rendered.connect(self._enable_marker)
        self._enable_marker()

    def _enable_marker(self, *_args) -> None:
        # the widget needs an initialised interactor: switch it on with the first render
        if self._marker_on or not getattr(self._canvas, "_initialized", False):
            return
        self.marker.SetInteractor(self._canvas.interactor)
        self.marker.SetEnabled(1)
        self.marker.InteractiveOff()
        self._marker_on = True
        self._canvas.request_render()

    @property
    def marker_enabled(self) -> bool:
        """True once the orientation marker is drawn."""
        return self._marker_on and bool(self.marker.GetEnabled())

    def legend_texts(self) -> list[str]:
        """The legend's lines."""
        return [t.GetInput() for t in self.legend]
