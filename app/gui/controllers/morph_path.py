"""The morph path cache on the GUI side: requests the whole path, keeps its frames, draws them.

A change of subject, target, phase, seed, correlation, smoothing or checkpoint drops the cache
and asks the worker for a new path; its frames arrive in chunks and play at once. Playback
and slider scrubbing draw the nearest cached alpha: a mapper swap and a render, no decode.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject

from cardio_explorer.app.gui.display import Display
from cardio_explorer.app.gui.workers import CoalescingWorker, ResultRouter
from cardio_explorer.app.jobs.models import Engines
from cardio_explorer.app.jobs.morph import MorphOutput
from cardio_explorer.app.jobs.path import PathFrame, PathRequest
from cardio_explorer.app.jobs.protocol import JobDone, next_request_id
from cardio_explorer.app.jobs.state import AppState

PATH_FIELDS = frozenset({"subject_id", "target_group", "phase", "correlated", "seed", "smoothing"})


class MorphPath(QObject):
    """Builds, holds and shows the cached morph path of the current controls."""

    def __init__(
        self,
        state: AppState,
        display: Display,
        worker: CoalescingWorker,
        router: ResultRouter,
        on_progress: Callable[[str], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state, self.display, self.worker = state, display, worker
        self.on_progress = on_progress
        self.request: PathRequest | None = None
        self.frames: dict[int, PathFrame] = {}
        self.complete = False
        # the last alphas drawn from the cache (tests); bounded: playback may run for hours
        self.drawn_alphas: deque[float] = deque(maxlen=1000)
        self._outputs: dict[int, MorphOutput] = {}
        router.route("path", self._done, partial=self._arrived)

    # building -------------------------------------------------------------------------------
    def rebuild(self, engines: Engines) -> PathRequest:
        """Drop the cache and ask for the path of the current controls."""
        s = self.state
        self.request = PathRequest(next_request_id(), engines, s.morph_query(), s.smoothing)
        self.frames.clear()
        self._outputs.clear()
        self.complete = False
        self.worker.submit(self.request)
        self._say()
        return self.request

    def _arrived(self, result: JobDone) -> None:
        if result.request is not self.request:
            return
        for frame in result.value:
            self.frames[frame.index] = frame
        self._say()

    def _done(self, result: JobDone) -> None:
        if result.request is self.request:
            self.complete = True
            self._say()

    def _say(self) -> None:
        if self.on_progress is not None and self.request is not None:
            total = len(self.request.alphas)
            text = (
                f"morph path cached ({total})"
                if self.complete
                else f"caching morph path {len(self.frames)}/{total}"
            )
            self.on_progress(text)

    # showing --------------------------------------------------------------------------------
    @property
    def progress(self) -> float:
        """Fraction of the path's alphas cached, 0-1."""
        if self.request is None:
            return 0.0
        return len(self.frames) / len(self.request.alphas)

    def nearest(self, alpha: float) -> int | None:
        """Index of the cached frame closest to alpha (None when nothing is cached)."""
        if not self.frames:
            return None
        return min(self.frames, key=lambda i: (abs(self.frames[i].alpha - alpha), i))

    def holds(self, alpha: float) -> bool:
        """True when alpha itself (not a neighbour) is cached."""
        index = self.nearest(alpha)
        return index is not None and abs(self.frames[index].alpha - alpha) < 1e-6

    def output(self, index: int) -> MorphOutput:
        """A cached frame as a complete morph step (made once; the viewer builds its VTK once)."""
        if index in self._outputs:
            return self._outputs[index]
        frame = self.frames[index]
        self._outputs[index] = MorphOutput(
            frame.labels,
            frame.latent_path,
            frame.meshes,
            None,
            None,
            frame.inference_ms,
            frame.surface_ms,
            ed=frame.ed,
            es=frame.es,
            phenotypes=frame.phenotypes,
        )
        return self._outputs[index]

    def show(self, alpha: float) -> bool:
        """Draw the cached frame nearest alpha; False when nothing is cached."""
        index = self.nearest(alpha)
        if index is None:
            return False
        self.display.show_morph(self.output(index), next_request_id(), context=False)
        self.drawn_alphas.append(self.frames[index].alpha)
        return True
