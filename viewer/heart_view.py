"""3D view of the heart: one actor per structure, cheap surface swaps, clip plane, camera state.

GUI thread only. Surfaces come from :mod:`cardio_explorer.viewer.surfaces` (any thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PySide6.QtWidgets import QWidget
from vtkmodules.vtkCommonDataModel import vtkPlane, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkMapper, vtkPolyDataMapper

from cardio_explorer.engine.labels import LABEL_TABLE, Label, LabelTable
from cardio_explorer.engine.volume import Volume
from cardio_explorer.viewer.render_window import VtkCanvas
from cardio_explorer.viewer.surfaces import STRUCTURES

DEFAULT_OPACITY = {1: 1.0, 2: 0.45, 3: 1.0}  # a see-through myocardium shows the LV inside
REFRAME_SIZE_RATIO = 1.3  # content this much larger or smaller than the framed one: re-frame
REFRAME_SHIFT = 0.25  # or its centre moved by this fraction of the framed size

# Long axes closer than this (cosine, about 10 degrees) count as the same heart orientation.
_SAME_AXIS_COS = float(np.cos(np.radians(10.0)))


def _extent(surfaces: Mapping[int, vtkPolyData]) -> tuple[np.ndarray, float] | None:
    """Centre and diagonal (mm) of all non-empty surfaces; None when all are empty."""
    bounds = [np.asarray(p.GetBounds()) for p in surfaces.values() if p.GetNumberOfPoints()]
    if not bounds:
        return None
    lo = np.min([b[0::2] for b in bounds], axis=0)
    hi = np.max([b[1::2] for b in bounds], axis=0)
    return (lo + hi) / 2, float(np.linalg.norm(hi - lo))


def extent_changed(old: tuple[np.ndarray, float], new: tuple[np.ndarray, float]) -> bool:
    """True when new content lies elsewhere or is of another size than what was framed."""
    if old[1] <= 0:
        return True
    ratio = new[1] / old[1]
    shift = float(np.linalg.norm(new[0] - old[0])) / old[1]
    return not (1 / REFRAME_SIZE_RATIO < ratio < REFRAME_SIZE_RATIO) or shift > REFRAME_SHIFT


@dataclass(frozen=True)
class ClipPlane:
    """A world plane (mm): what lies on the side the normal points to stays visible."""

    normal: tuple[float, float, float]
    origin: tuple[float, float, float]


def slice_plane(volume: Volume, index: int, keep: Literal["above", "below"] = "above") -> ClipPlane:
    """Clip plane at short-axis slice ``index`` (array axis 0) of a volume, in world mm.

    keep="above" keeps slices ``index`` and higher, "below" keeps ``index`` and lower; the cut
    face then shows the surfaces' outlines at that slice.
    """
    _, ny, nx = volume.spatial_shape
    offset = -0.5 if keep == "above" else 0.5
    centre = volume.index_to_world(np.array([[index + offset, (ny - 1) / 2, (nx - 1) / 2]]))[0]
    normal = volume.affine[:3, 2] / np.linalg.norm(volume.affine[:3, 2])
    if keep == "below":
        normal = -normal
    return ClipPlane(tuple(float(v) for v in normal), tuple(float(v) for v in centre))


class HeartView(VtkCanvas):
    """LV, myocardium and RV surfaces with per-structure colour, opacity and visibility.

    ``show_surfaces`` only swaps the mappers' inputs (playback-cheap). Every setter draws once
    through :meth:`request_render`; nothing draws on a timer. Signals: ``rendered(float)`` (ms).
    """

    def __init__(
        self,
        parent: QWidget | None = None,
        label_table: LabelTable = LABEL_TABLE,
        structures: tuple[int, ...] = STRUCTURES,
    ) -> None:
        super().__init__(parent)
        self._label_table = label_table
        self._actors: dict[int, vtkActor] = {}
        self._mappers: dict[int, vtkPolyDataMapper] = {}
        self._clip = vtkPlane()
        self._clip_enabled = False
        self._has_shown = False
        # the heart's long (slice) axis and in-plane up axis in world space (see set_heart_axes)
        self._long_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
        self._up_axis: tuple[float, float, float] = (0.0, 1.0, 0.0)
        self._reframe = False
        self._framed: tuple[np.ndarray, float] | None = None  # extent the camera was fit to
        colours = {e.value: e.rgb for e in label_table.entries}
        # structures share their interfaces (LV/MYO, MYO/RV): push the myocardium a little back
        # in depth so the blood pools win there instead of speckling (z-fighting)
        vtkMapper.SetResolveCoincidentTopologyToPolygonOffset()
        for value in structures:
            mapper = vtkPolyDataMapper()
            mapper.SetInputData(vtkPolyData())
            mapper.ScalarVisibilityOff()
            if value == Label.MYO:
                mapper.SetRelativeCoincidentTopologyPolygonOffsetParameters(2.0, 4.0)
            actor = vtkActor()
            actor.SetMapper(mapper)
            prop = actor.GetProperty()
            prop.SetColor(*(c / 255.0 for c in colours[value]))
            prop.SetOpacity(DEFAULT_OPACITY.get(value, 1.0))
            prop.SetSpecular(0.25)
            prop.SetSpecularPower(20.0)
            prop.SetInterpolationToPhong()
            self.renderer.AddActor(actor)
            self._actors[value] = actor
            self._mappers[value] = mapper
        self.render_window.SetMultiSamples(0)

    # structures -----------------------------------------------------------------------------
    @property
    def structures(self) -> tuple[int, ...]:
        """Label values that have an actor."""
        return tuple(self._actors)

    def actor(self, label: int) -> vtkActor:
        """The VTK actor of one structure (for tests and advanced styling)."""
        return self._actors[int(label)]

    def show_surfaces(
        self, surfaces: Mapping[int, vtkPolyData], reset_camera: bool = False
    ) -> None:
        """Swap in new surfaces (missing ones are emptied); the camera resets the first time."""
        for value, mapper in self._mappers.items():
            poly = surfaces.get(value)
            mapper.SetInputData(poly if poly is not None else vtkPolyData())
        extent = _extent(surfaces)
        if reset_camera or not self._has_shown or self._reframe:
            self._has_shown = extent is not None
            self._reframe = False
            self._frame_default_view()
            self._framed = extent
        elif extent is not None and self._framed is None:
            self._framed = extent  # a restored camera: keep it, compare later content to this
        elif extent is not None and extent_changed(self._framed, extent):
            # other content (a completed heart, another subject): fit it, same view direction
            self.renderer.ResetCamera()
            self._framed = extent
        self.renderer.ResetCameraClippingRange()
        self.request_render()

    def clear(self) -> None:
        """Show nothing (the camera is kept)."""
        self.show_surfaces({})

    def set_opacity(self, label: int, opacity: float) -> None:
        """Opacity 0-1 of one structure."""
        self._actors[int(label)].GetProperty().SetOpacity(float(np.clip(opacity, 0.0, 1.0)))
        self.request_render()

    def opacity(self, label: int) -> float:
        """Opacity 0-1 of one structure."""
        return float(self._actors[int(label)].GetProperty().GetOpacity())

    def set_visible(self, label: int, visible: bool) -> None:
        """Show or hide one structure."""
        self._actors[int(label)].SetVisibility(bool(visible))
        self.request_render()

    def is_visible(self, label: int) -> bool:
        """Whether one structure is shown."""
        return bool(self._actors[int(label)].GetVisibility())

    def set_color(self, label: int, rgb: tuple[int, int, int]) -> None:
        """Colour of one structure as 0-255 RGB."""
        self._actors[int(label)].GetProperty().SetColor(*(float(c) / 255.0 for c in rgb))
        self.request_render()

    def color(self, label: int) -> tuple[int, int, int]:
        """Colour of one structure as 0-255 RGB."""
        rgb = self._actors[int(label)].GetProperty().GetColor()
        return tuple(round(c * 255) for c in rgb)  # type: ignore[return-value]

    def set_depth_peeling(self, enabled: bool, peels: int = 4) -> None:
        """Exact order-independent transparency (about 3x slower on llvmpipe; for screenshots)."""
        self.renderer.SetUseDepthPeeling(int(bool(enabled)))
        self.renderer.SetMaximumNumberOfPeels(int(peels))
        self.renderer.SetOcclusionRatio(0.05)
        self.render_window.SetAlphaBitPlanes(int(bool(enabled)))
        self.request_render()

    # clip plane -----------------------------------------------------------------------------
    def set_clip(
        self,
        enabled: bool,
        normal: tuple[float, float, float] | None = None,
        origin: tuple[float, float, float] | None = None,
    ) -> None:
        """Cut all surfaces with a world plane; keeps the side the normal points to."""
        if normal is not None:
            self._clip.SetNormal(*normal)
        if origin is not None:
            self._clip.SetOrigin(*origin)
        if bool(enabled) != self._clip_enabled:
            for mapper in self._mappers.values():
                if enabled:
                    mapper.AddClippingPlane(self._clip)
                else:
                    mapper.RemoveAllClippingPlanes()
            self._clip_enabled = bool(enabled)
        self.request_render()

    def set_clip_plane(self, plane: ClipPlane | None) -> None:
        """Cut with a :class:`ClipPlane` (e.g. from :func:`slice_plane`), or stop cutting."""
        if plane is None:
            self.set_clip(False)
        else:
            self.set_clip(True, plane.normal, plane.origin)

    def clip(self) -> ClipPlane | None:
        """The active clip plane, or None."""
        if not self._clip_enabled:
            return None
        return ClipPlane(tuple(self._clip.GetNormal()), tuple(self._clip.GetOrigin()))

    # camera ---------------------------------------------------------------------------------
    def set_heart_axes(self, volume: Volume) -> None:
        """Take the default view's directions from a volume's grid: its slice axis (the long
        axis of a short-axis stack) and its in-plane rows, wherever the header puts them; a
        scanner-oriented stack is double-oblique, and world z would show it end-on."""
        linear = np.asarray(volume.affine, dtype=float)[:3, :3]
        long_axis, up = linear[:, 2], linear[:, 1]
        if np.linalg.norm(np.cross(long_axis, up)) <= 1e-9:
            return
        long_axis = tuple(float(v) for v in long_axis / np.linalg.norm(long_axis))
        up = tuple(float(v) for v in up / np.linalg.norm(up))
        # another heart's orientation (a loaded scanner-oriented file after the axis-aligned
        # atlas): the next drawing frames it the default way, as the first one was
        turned = float(np.dot(long_axis, self._long_axis)) < _SAME_AXIS_COS
        self._reframe = self._reframe or (self._has_shown and turned)
        self._long_axis, self._up_axis = long_axis, up

    def _frame_default_view(self) -> None:
        # a three-quarter view: the long axis (the stack's slice axis) tilted towards the
        # viewer, so base, apex and the RV beside the LV are all visible
        cam = self.renderer.GetActiveCamera()
        cam.SetFocalPoint(0.0, 0.0, 0.0)
        cam.SetPosition(*self._long_axis)
        cam.SetViewUp(*self._up_axis)
        cam.Elevation(-55.0)
        cam.Azimuth(25.0)
        cam.OrthogonalizeViewUp()
        self.renderer.ResetCamera()

    def reset_camera(self) -> None:
        """Back to the default three-quarter view, framing everything shown."""
        self._frame_default_view()
        self._framed = _extent({k: m.GetInput() for k, m in self._mappers.items()})
        self.request_render()

    def camera(self) -> dict[str, Any]:
        """Camera as plain JSON-able values (for sessions)."""
        cam = self.renderer.GetActiveCamera()
        return {
            "position": list(cam.GetPosition()),
            "focal_point": list(cam.GetFocalPoint()),
            "view_up": list(cam.GetViewUp()),
            "view_angle": float(cam.GetViewAngle()),
        }

    def set_camera(self, state: Mapping[str, Any]) -> None:
        """Restore a camera from :meth:`camera`'s dict."""
        cam = self.renderer.GetActiveCamera()
        cam.SetPosition(*state["position"])
        cam.SetFocalPoint(*state["focal_point"])
        cam.SetViewUp(*state["view_up"])
        cam.SetViewAngle(float(state.get("view_angle", 30.0)))
        self.renderer.ResetCameraClippingRange()
        self._has_shown = True  # a restored camera must survive the next show_surfaces
        self._framed = None
        self.request_render()
