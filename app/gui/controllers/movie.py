"""Movies of the morph (alpha 0 -> 1) or of the heartbeat, as animated GIF or MP4 (imageio).

The morph's frames are decoded and meshed on the worker; every frame is then drawn by the 3D
view with the camera fixed where the user left it, read back and written. GIF needs nothing
more; MP4 needs the imageio-ffmpeg package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from cardio_explorer.app.gui.host import Host
from cardio_explorer.app.jobs.movie import MovieRequest
from cardio_explorer.app.jobs.protocol import JobDone, next_request_id
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.viewer.surfaces import surfaces_from_meshes

MOVIE_FILTER = "Animated GIF (*.gif);;MP4 video (*.mp4)"
MORPH_FRAMES = 21
MORPH_FPS = 10.0


def check_movie_path(path: str | Path) -> Path:
    """A .gif or .mp4 path whose writer is installed; one clear error otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise CardioInputError(path, "a movie must end in .gif or .mp4")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401  (optional dependency: probed, not used)
        except ImportError:
            raise CardioInputError(
                path,
                "MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); "
                "or write an animated .gif",
            ) from None
    if not path.parent.is_dir():
        raise CardioInputError(path.parent, "folder not found")
    return path


def write_movie(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    """Write RGB frames (H, W, 3) as an animated GIF (looping) or an MP4."""
    import imageio.v3 as iio  # start-up: its plugins load only when a movie is written

    if path.suffix.lower() == ".gif":
        iio.imwrite(path, np.stack(frames), duration=1000.0 / fps, loop=0)
    else:
        iio.imwrite(path, np.stack(frames), fps=fps, codec="libx264", macro_block_size=1)
    return path


class MovieController(QObject):
    """File > Export morph movie / heartbeat movie."""

    def __init__(self, host: Host, parent: QWidget) -> None:
        super().__init__(parent)
        self.host, self.parent_widget = host, parent
        self.last_movie: Path | None = None
        self.frames_written = 0
        host.router.route("movie", self._morph_frames_done)

    def build_menu(self, menu: QMenu) -> None:
        """Two entries after the other exports."""
        anchor = next((a for a in menu.actions() if a.text().startswith("Export morph path")), None)
        index = menu.actions().index(anchor) + 1 if anchor is not None else len(menu.actions())
        before = menu.actions()[index] if index < len(menu.actions()) else None
        for text, slot in (
            ("Export morph movie (GIF/MP4)…", self.export_morph_movie),
            ("Export heartbeat movie (GIF/MP4)…", self.export_heartbeat_movie),
        ):
            action = QAction(text, self.parent_widget)
            action.triggered.connect(lambda _=False, s=slot: self._guarded(s))
            menu.insertAction(before, action)

    def _guarded(self, action) -> None:
        try:
            action()
        except (CardioInputError, OSError) as error:
            self.host.report_error("Cannot write the movie", str(error))

    def _ask(self, default: str) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(
            self.parent_widget, "Export movie", default, MOVIE_FILTER
        )
        return Path(name) if name else None

    def export_morph_movie(
        self, path: str | Path | None = None, n_frames: int = MORPH_FRAMES
    ) -> MovieRequest | None:
        """The morph from alpha 0 to 1 of the current controls (meshed on the worker)."""
        state = self.host.state
        if self.host.engines.morph is None or state.subject_id is None:
            raise CardioInputError("movie", "no label VAE model to morph with")
        if path is None:
            path = self._ask(f"{state.subject_id}_to_{state.target_group}_{state.phase}.gif")
            if path is None:
                return None
        request = MovieRequest(
            next_request_id(),
            self.host.engines,
            state.morph_query(),
            state.smoothing,
            int(n_frames),
            check_movie_path(path),
        )
        self.host.worker.submit(request)
        self.host.status(f"meshing {n_frames} morph steps for {request.path.name}…")
        return request

    def _morph_frames_done(self, result: JobDone) -> None:
        request: MovieRequest = result.request
        try:
            self._render([surfaces_from_meshes(m) for m in result.value], request.path, MORPH_FPS)
        except (CardioInputError, OSError) as error:
            self.host.report_error("Cannot write the movie", str(error))

    def export_heartbeat_movie(self, path: str | Path | None = None) -> Path | None:
        """The shown 3D+t sequence, every frame, at its own frame rate."""
        sample = self.host.display.sample
        if sample is None:
            raise CardioInputError("movie", "no heartbeat yet: generate or complete one")
        if path is None:
            path = self._ask("heartbeat.gif")
            if path is None:
                return None
        path = check_movie_path(path)
        frames = [surfaces_from_meshes(m) for m in sample.meshes]
        fps = 1000.0 / (sample.labels.frame_duration_ms or 50.0)
        return self._render(frames, path, fps)

    def _render(self, frames: Sequence, path: Path, fps: float) -> Path:
        """Draw each frame with the camera as it is now, then put the shown heart back."""
        heart = self.host.views.heart
        camera = heart.camera()
        pixels = []
        try:
            for surfaces in frames:
                heart.show_surfaces(surfaces)
                heart.set_camera(camera)
                pixels.append(heart.grab_pixels())
        finally:
            shown = self.host.display.current_surfaces()
            if shown is not None:
                heart.show_surfaces(shown)
            heart.set_camera(camera)
        written = write_movie(pixels, path, fps)
        self.last_movie, self.frames_written = written, len(pixels)
        self.host.status(f"wrote {written} ({len(pixels)} frames)")
        return written
