"""2D views: a short-axis slice and a long-axis reformat, grey image under a label overlay.

Both draw in millimetres (the image rectangle is the slice's physical size) with the aspect
locked, so thick short-axis slices look thick in the long-axis view. GUI thread only.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import LABEL_TABLE, Label, LabelTable
from cardio_explorer.engine.volume import ImageVolume, LabelVolume
from cardio_explorer.viewer.anatomy import PlaneAids

LongAxisPlane = Literal["xz", "yz"]


def overlay_lut(label_table: LabelTable = LABEL_TABLE) -> np.ndarray:
    """(256, 4) uint8 RGBA per label value: table colours, opaque; background transparent."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    for entry in label_table.entries:
        if entry.value != Label.BACKGROUND:
            lut[entry.value] = (*entry.rgb, 255)
    return lut


def _check_pair(labels: LabelVolume | None, image: ImageVolume | None) -> None:
    for volume, what in ((labels, "labels"), (image, "image")):
        if volume is not None and volume.is_4d:
            raise CardioInputError(volume.name or what, "expected one 3D frame, got 3D+t")
    if labels is not None and image is not None and not labels.same_grid(image):
        raise CardioInputError(image.name or "image", "is not on the grid of the labels")


class _LabelImageView(QWidget):
    """One 2D plane: grey image (levels fixed, no flicker) and RGBA label overlay, in mm."""

    def __init__(
        self,
        parent: QWidget | None,
        overlay_alpha: float,
        image_levels: tuple[float, float],
        label_table: LabelTable,
    ) -> None:
        super().__init__(parent)
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setBackground((20, 22, 26))
        self.view_box: pg.ViewBox = self._graphics.addViewBox(lockAspect=True, invertY=True)
        self.view_box.setMenuEnabled(False)
        self._image_item = pg.ImageItem(axisOrder="row-major")
        self._overlay_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self._image_item)
        self.view_box.addItem(self._overlay_item)
        self._lut = overlay_lut(label_table)
        self._alpha = float(overlay_alpha)
        self._levels = image_levels
        self._labels: LabelVolume | None = None
        self._image: ImageVolume | None = None
        self._shown_labels: np.ndarray | None = None
        self._shown_image: np.ndarray | None = None
        self._rect = QRectF()
        self.aids = PlaneAids(self.view_box, self._graphics)

    # data -----------------------------------------------------------------------------------
    def _store(self, labels: LabelVolume | None, image: ImageVolume | None) -> None:
        _check_pair(labels, image)
        self._labels, self._image = labels, image

    def _draw_plane(
        self, labels: np.ndarray | None, image: np.ndarray | None, width_mm: float, height_mm: float
    ) -> None:
        """Show one plane (rows down, columns across) stretched over width x height mm."""
        rect = QRectF(0.0, 0.0, width_mm, height_mm)
        self._shown_labels, self._shown_image = labels, image
        if image is not None:
            self._image_item.setImage(image, levels=self._levels, autoLevels=False)
            self._image_item.setRect(rect)
            self._image_item.setVisible(True)
        else:
            self._image_item.clear()
            self._image_item.setVisible(False)
        if labels is not None:
            self._overlay_item.setImage(self._lut[labels], autoLevels=False, levels=(0, 255))
            self._overlay_item.setRect(rect)
            self._overlay_item.setVisible(True)
        else:
            self._overlay_item.clear()
            self._overlay_item.setVisible(False)
        self._apply_alpha()
        if rect != self._rect:
            self._rect = rect
            self.view_box.setRange(rect, padding=0.02)

    def _apply_alpha(self) -> None:
        # labels alone are drawn opaque; over an image they are blended
        self._overlay_item.setOpacity(self._alpha if self._shown_image is not None else 1.0)

    def set_overlay_alpha(self, alpha: float) -> None:
        """Opacity 0-1 of the labels over the image."""
        self._alpha = float(np.clip(alpha, 0.0, 1.0))
        self._apply_alpha()

    @property
    def overlay_alpha(self) -> float:
        """Opacity 0-1 of the labels over the image."""
        return self._alpha

    def set_image_levels(self, low: float, high: float) -> None:
        """Grey window of the image (default -1..1, the generator's range)."""
        self._levels = (float(low), float(high))
        if self._shown_image is not None:
            self._image_item.setLevels(self._levels)

    def displayed_labels(self) -> np.ndarray | None:
        """The 2D label plane on screen (rows down, columns across)."""
        return self._shown_labels

    def displayed_image(self) -> np.ndarray | None:
        """The 2D image plane on screen (rows down, columns across)."""
        return self._shown_image

    def displayed_rect_mm(self) -> tuple[float, float]:
        """(width, height) in mm of the plane on screen."""
        return (self._rect.width(), self._rect.height())

    def scene_to_mm(self, scene_pos: QPointF) -> tuple[float, float]:
        """A scene position (e.g. of a mouse event) as (across, down) mm in the plane."""
        point = self.view_box.mapSceneToView(scene_pos)
        return (point.x(), point.y())


class SliceView(_LabelImageView):
    """A short-axis slice (array axis 0 of a (z, y, x) volume) with a slider to pick it.

    Signals: ``slice_changed(int)`` whenever the shown slice changes (slider or set_slice).
    """

    slice_changed = Signal(int)

    def __init__(
        self,
        parent: QWidget | None = None,
        overlay_alpha: float = 0.5,
        image_levels: tuple[float, float] = (-1.0, 1.0),
        label_table: LabelTable = LABEL_TABLE,
    ) -> None:
        super().__init__(parent, overlay_alpha, image_levels, label_table)
        self._index = 0
        self._slider = QSlider(Qt.Orientation.Horizontal)
        self._slider.setRange(0, 0)
        self._caption = QLabel("no data")
        self._caption.setMinimumWidth(80)
        controls = QHBoxLayout()
        controls.addWidget(self._slider, 1)
        controls.addWidget(self._caption)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._graphics, 1)
        layout.addLayout(controls)
        self._slider.valueChanged.connect(self.set_slice)

    @property
    def slider(self) -> QSlider:
        """The slice slider (for shortcuts and tests)."""
        return self._slider

    @property
    def n_slices(self) -> int:
        """Number of short-axis slices of the shown volume (0 when empty)."""
        volume = self._labels if self._labels is not None else self._image
        return 0 if volume is None else volume.spatial_shape[0]

    @property
    def slice_index(self) -> int:
        """The shown slice."""
        return self._index

    def set_volumes(self, labels: LabelVolume | None, image: ImageVolume | None = None) -> None:
        """Show 3D labels and/or an image on the same grid; the slice index is kept if valid."""
        first = self.n_slices == 0
        self._store(labels, image)
        n = self.n_slices
        index = n // 2 if first else min(self._index, max(n - 1, 0))
        self._slider.blockSignals(True)
        self._slider.setRange(0, max(n - 1, 0))
        self._slider.setValue(index)
        self._slider.blockSignals(False)
        changed = index != self._index
        self._index = index
        self._redraw()
        if changed and n:
            self.slice_changed.emit(index)

    def set_slice(self, index: int) -> None:
        """Show slice ``index`` (clamped); emits ``slice_changed`` when it changes."""
        n = self.n_slices
        index = int(np.clip(index, 0, max(n - 1, 0)))
        if self._slider.value() != index:
            self._slider.blockSignals(True)
            self._slider.setValue(index)
            self._slider.blockSignals(False)
        if index == self._index:
            return
        self._index = index
        self._redraw()
        self.slice_changed.emit(index)

    def _redraw(self) -> None:
        volume = self._labels if self._labels is not None else self._image
        if volume is None:
            self._draw_plane(None, None, 0.0, 0.0)
            self.aids.update(0.0, 0.0, np.zeros(3), np.zeros(3))
            self._caption.setText("no data")
            return
        nz, ny, nx = volume.spatial_shape
        sz, sy, sx = volume.spacing_zyx
        k = self._index
        labels = None if self._labels is None else self._labels.data[k]
        image = None if self._image is None else self._image.data[k]
        self._draw_plane(labels, image, nx * sx, ny * sy)
        self.aids.update(nx * sx, ny * sy, volume.affine[:3, 0], volume.affine[:3, 1])
        # where the slice lies, in mm below the first (basal) slice; its number in the tooltip
        self._caption.setText(f"base +{k * sz:.1f} mm")
        self._caption.setToolTip(
            f"{k * sz:.1f} mm below the first (basal) slice: slice {k + 1} of {nz}, "
            f"{sz:.1f} mm apart"
        )


def lv_centre_index(labels: LabelVolume) -> tuple[int, int, int]:
    """(z, y, x) voxel index of the LV blood-pool centroid (else of all labels, else the centre)."""
    for mask in (labels.data == Label.LV, labels.data > 0):
        if mask.any():
            return tuple(round(c) for c in np.argwhere(mask).mean(axis=0))  # type: ignore[return-value]
    return tuple(s // 2 for s in labels.spatial_shape)  # type: ignore[return-value]


class LongAxisView(_LabelImageView):
    """A long-axis reformat: the x-z or y-z plane through the LV centre, base at the top.

    Rows are short-axis slices (slice thickness in mm), so the aspect is physical. A line
    marks the short-axis slice shown elsewhere. Signals: ``slice_clicked(int)``: the short-axis
    slice under a click.
    """

    slice_clicked = Signal(int)

    def __init__(
        self,
        parent: QWidget | None = None,
        plane: LongAxisPlane = "xz",
        overlay_alpha: float = 0.5,
        image_levels: tuple[float, float] = (-1.0, 1.0),
        label_table: LabelTable = LABEL_TABLE,
    ) -> None:
        super().__init__(parent, overlay_alpha, image_levels, label_table)
        self._plane: LongAxisPlane = plane
        self._position: int | None = None  # None: through the LV centre
        self._marker = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen((255, 220, 0), width=1))
        self._marker.setVisible(False)
        self._marker_index: int | None = None
        self.view_box.addItem(self._marker)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._graphics)
        self._graphics.scene().sigMouseClicked.connect(self._on_scene_clicked)

    @property
    def plane(self) -> LongAxisPlane:
        """'xz' (fixed row y) or 'yz' (fixed column x)."""
        return self._plane

    @property
    def position(self) -> int:
        """The fixed in-plane index: y row for 'xz', x column for 'yz'."""
        if self._position is not None:
            return self._position
        if self._labels is None:
            volume = self._image
            if volume is None:
                return 0
            _, ny, nx = volume.spatial_shape
            return ny // 2 if self._plane == "xz" else nx // 2
        _, y, x = lv_centre_index(self._labels)
        return y if self._plane == "xz" else x

    def set_volumes(self, labels: LabelVolume | None, image: ImageVolume | None = None) -> None:
        """Show 3D labels and/or an image on the same grid."""
        self._store(labels, image)
        self._redraw()

    def set_plane(self, plane: LongAxisPlane) -> None:
        """Reformat along 'xz' or 'yz'."""
        if plane not in ("xz", "yz"):
            raise CardioInputError("plane", f"expected 'xz' or 'yz', got {plane!r}")
        self._plane = plane
        self._redraw()

    def set_position(self, index: int | None) -> None:
        """Fix the in-plane index of the cut, or None to follow the LV centre."""
        self._position = None if index is None else int(index)
        self._redraw()

    def set_slice_marker(self, index: int | None) -> None:
        """Mark short-axis slice ``index`` with a line (None hides it)."""
        self._marker_index = index
        self._place_marker()

    def slice_at(self, down_mm: float) -> int | None:
        """Short-axis slice at a height (mm from the top edge), or None outside the volume."""
        volume = self._labels if self._labels is not None else self._image
        if volume is None:
            return None
        index = int(np.floor(down_mm / volume.spacing_zyx[0]))
        return index if 0 <= index < volume.spatial_shape[0] else None

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        across, down = self.scene_to_mm(event.scenePos())
        width, _ = self.displayed_rect_mm()
        index = self.slice_at(down)
        if index is not None and 0 <= across <= width:
            self.slice_clicked.emit(index)

    def _place_marker(self) -> None:
        volume = self._labels if self._labels is not None else self._image
        if volume is None or self._marker_index is None:
            self._marker.setVisible(False)
            return
        self._marker.setPos((self._marker_index + 0.5) * volume.spacing_zyx[0])
        self._marker.setVisible(True)

    def _redraw(self) -> None:
        volume = self._labels if self._labels is not None else self._image
        if volume is None:
            self._draw_plane(None, None, 0.0, 0.0)
            self.aids.update(0.0, 0.0, np.zeros(3), np.zeros(3))
            self._place_marker()
            return
        nz, ny, nx = volume.spatial_shape
        sz, sy, sx = volume.spacing_zyx
        limit = ny if self._plane == "xz" else nx
        j = int(np.clip(self.position, 0, limit - 1))

        def cut(data: np.ndarray) -> np.ndarray:
            return data[:, j, :] if self._plane == "xz" else data[:, :, j]

        labels = None if self._labels is None else np.ascontiguousarray(cut(self._labels.data))
        image = None if self._image is None else np.ascontiguousarray(cut(self._image.data))
        width = nx * sx if self._plane == "xz" else ny * sy
        self._draw_plane(labels, image, width, nz * sz)
        across = volume.affine[:3, 0] if self._plane == "xz" else volume.affine[:3, 1]
        self.aids.update(width, nz * sz, across, volume.affine[:3, 2])
        self._place_marker()
