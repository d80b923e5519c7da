"""A Qt widget holding one VTK render window, that also renders with no display (offscreen Qt).

Thread rule: every method here touches OpenGL, so call them on the GUI thread only.
"""

from __future__ import annotations

import time
import weakref

import numpy as np
import shiboken6
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL render classes)
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QShowEvent
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkWindowToImageFilter

_EGL_CLASS: type | None = None
_LIVE_CANVASES: weakref.WeakSet[VtkCanvas] = weakref.WeakSet()
_QUIT_HOOKED = False


def _offscreen_window_class() -> type | None:
    """vtkEGLRenderWindow subclass that ignores the (fake) window id of Qt's offscreen platform."""
    global _EGL_CLASS
    if _EGL_CLASS is None:
        try:
            from vtkmodules.vtkRenderingOpenGL2 import vtkEGLRenderWindow
        except ImportError:  # VTK built without EGL (Windows, macOS wheels)
            return None

        class OffscreenEGLRenderWindow(vtkEGLRenderWindow):
            """EGL window that renders into its own offscreen buffer whatever Qt says."""

            def SetWindowInfo(self, info: str) -> None:  # Qt's offscreen id is not a real window
                pass

        _EGL_CLASS = OffscreenEGLRenderWindow
    return _EGL_CLASS


def is_offscreen_platform() -> bool:
    """True when Qt runs on its offscreen platform (tests, CI, batch screenshots)."""
    app = QApplication.instance()
    return app is not None and app.platformName() == "offscreen"


def make_render_window() -> vtkRenderWindow | None:
    """An offscreen EGL render window under Qt's offscreen platform, else None (VTK's stock one).

    Under ``QT_QPA_PLATFORM=offscreen`` the stock window renders black without failing, because
    VTK is handed a window id that is not a real window (see shared/HEADLESS.md).
    """
    if not is_offscreen_platform():
        return None
    cls = _offscreen_window_class()
    if cls is None:
        return None
    window = cls()
    window.SetOffScreenRendering(1)
    return window


class AppKeysInteractor(QVTKRenderWindowInteractor):
    """Mouse to VTK (rotate, zoom, pan); every key to Qt: VTK's key bindings ('p' pick box,
    'w'/'s' wireframe, 'e'/'q' exit, '3' stereo...) never run, the app's shortcuts do."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Not handled here: Qt passes it on to the parents (and the window's shortcuts)."""
        event.ignore()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        """Not handled here (see keyPressEvent)."""
        event.ignore()


def mouse_only_style() -> vtkInteractorStyleTrackballCamera:
    """Trackball camera (left rotate, right / wheel zoom, middle / shift-left pan) whose key
    handlers are replaced by no-op observers, so no key reaches VTK's defaults."""
    style = vtkInteractorStyleTrackballCamera()
    for event in ("CharEvent", "KeyPressEvent", "KeyReleaseEvent"):
        style.AddObserver(event, lambda _obj, _event: None)
    return style


def finalize_all_canvases() -> None:
    """Release the render windows of all live canvases (called when the application quits)."""
    for canvas in list(_LIVE_CANVASES):
        canvas.finalize()


class VtkCanvas(QWidget):
    """QWidget with one VTK renderer, a trackball camera, pixel read-back and safe teardown.

    Renders on demand only (no timers): :meth:`render` draws now, :meth:`request_render`
    coalesces several changes into one draw when control returns to the event loop.
    Signals: ``rendered(float)`` with the milliseconds the last draw took.
    """

    rendered = Signal(float)

    def __init__(
        self,
        parent: QWidget | None = None,
        background: tuple[float, float, float] = (0.08, 0.09, 0.11),
    ) -> None:
        super().__init__(parent)
        global _QUIT_HOOKED
        window = make_render_window()
        self._offscreen = window is not None
        if window is None:
            self._interactor = AppKeysInteractor(self)
        else:
            self._interactor = AppKeysInteractor(self, rw=window)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._interactor)
        # kept here too: the Qt widget may be deleted before the canvas is finalised
        self._window: vtkRenderWindow = self._interactor.GetRenderWindow()
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*background)
        self._window.AddRenderer(self.renderer)
        self._interactor.SetInteractorStyle(mouse_only_style())
        self._initialized = False
        self._finalized = False
        self._render_pending = False
        self.last_render_ms = float("nan")
        _LIVE_CANVASES.add(self)
        app = QApplication.instance()
        if app is not None and not _QUIT_HOOKED:
            app.aboutToQuit.connect(finalize_all_canvases)
            _QUIT_HOOKED = True

    # properties -----------------------------------------------------------------------------
    @property
    def render_window(self) -> vtkRenderWindow:
        """The VTK render window (offscreen EGL under Qt's offscreen platform)."""
        return self._window

    @property
    def interactor(self) -> QVTKRenderWindowInteractor:
        """The Qt widget that forwards mouse and keys to VTK."""
        return self._interactor

    @property
    def is_finalized(self) -> bool:
        """True once the render window was released; the canvas draws nothing after that."""
        return self._finalized

    # drawing --------------------------------------------------------------------------------
    def _can_render(self) -> bool:
        # a stock window draws into a real native window, which must be shown first
        return not self._finalized and (self._offscreen or self.isVisible())

    def render(self) -> bool:
        """Draw now on the GUI thread; False (nothing drawn) when hidden or finalised."""
        self._render_pending = False
        if not self._can_render():
            return False
        if not self._initialized:
            self._interactor.Initialize()
            self._initialized = True
        start = time.perf_counter()
        self.render_window.Render()
        self.last_render_ms = (time.perf_counter() - start) * 1000.0
        self.rendered.emit(self.last_render_ms)
        return True

    def request_render(self) -> None:
        """Draw once when the event loop next runs, however many changes come before it."""
        if self._render_pending or self._finalized:
            return
        self._render_pending = True
        QTimer.singleShot(0, self._flush_render)

    def _flush_render(self) -> None:
        if self._render_pending:
            self.render()

    def grab_pixels(self) -> np.ndarray:
        """The rendered pixels as an (H, W, 3) uint8 array, row 0 at the top (device pixels)."""
        if not self.render():
            raise RuntimeError("VtkCanvas: cannot read pixels of a hidden or finalised canvas")
        grabber = vtkWindowToImageFilter()
        grabber.SetInput(self.render_window)
        grabber.SetInputBufferTypeToRGB()
        grabber.ReadFrontBufferOff()
        grabber.Update()
        image = grabber.GetOutput()
        width, height, _ = image.GetDimensions()
        flat = vtk_to_numpy(image.GetPointData().GetScalars())
        return np.ascontiguousarray(flat.reshape(height, width, 3)[::-1])

    # lifetime -------------------------------------------------------------------------------
    def finalize(self) -> None:
        """Release the render window (idempotent); call from the main window's closeEvent."""
        if self._finalized:
            return
        self._finalized = True
        self._render_pending = False
        # a paint after Finalize would bring the context back to life: stop paints first
        if shiboken6.isValid(self._interactor):
            self._interactor.setUpdatesEnabled(False)
        self._window.Finalize()
        _LIVE_CANVASES.discard(self)

    def showEvent(self, event: QShowEvent) -> None:
        """Draw what changed while hidden."""
        super().showEvent(event)
        self.request_render()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Finalise the render window: rendering after close crashes sibling windows."""
        self.finalize()
        super().closeEvent(event)
