"""One worker thread for all engine work, napari-style: immutable requests with ids, coalescing.

The GUI thread builds an immutable request (a frozen dataclass with ``request_id`` and ``lane``)
and calls :meth:`CoalescingWorker.submit`. Each lane (morph, sequence, curve...) keeps only its
newest pending request: a new one supersedes the one waiting. The thread runs the pending
request of the highest-priority lane; a job may be a generator, stepped between other lanes'
requests so a long job never holds a slider back. Results and errors come back through Qt
signals, delivered on the GUI thread, carrying the request; the receiver draws only the newest
id of its lane (:meth:`is_current`). The GUI thread never runs a network.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from cardio_explorer.app.jobs.protocol import (
    JobDone,
    JobFailed,
    Partial,
    Runner,
    SupersededError,
)
from cardio_explorer.app.jobs.runner import make_runner
from cardio_explorer.viewer.surfaces import extract_meshes

log = logging.getLogger(__name__)

# the window's runner: the Qt-free jobs, meshing with viewer's VTK surface extraction
run_request = make_runner(extract_meshes)


class CoalescingWorker(QObject):
    """A single worker thread running requests, newest-per-lane, by lane priority.

    ``runner(request, is_current)`` returns a value or a generator (stepped; its return value is
    the result; it may yield progress text or a :class:`Partial`). Signals (received on the GUI
    thread): ``done(JobDone)``, ``partial(JobDone)``, ``failed(JobFailed)``,
    ``progress(object, str)``.
    """

    done = Signal(object)
    partial = Signal(object)
    failed = Signal(object)
    progress = Signal(object, str)

    def __init__(self, runner: Runner, lanes: Sequence[str], parent: QObject | None = None):
        super().__init__(parent)
        self._runner = runner
        self._priority = {lane: i for i, lane in enumerate(lanes)}
        self._cond = threading.Condition()
        self._pending: dict[str, Any] = {}
        self._active: dict[str, tuple[Any, Iterator[Any], float]] = {}
        self._latest: dict[str, int] = {}
        self._running: Any = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="cardio-worker", daemon=True)
        self._thread.start()

    # GUI side -------------------------------------------------------------------------------
    def submit(self, request: Any) -> None:
        """Queue a request; it supersedes any request of its lane still waiting."""
        lane = request.lane
        if lane not in self._priority:
            raise ValueError(f"unknown lane {lane!r}")
        with self._cond:
            if self._stopping:
                return
            self._latest[lane] = request.request_id
            self._pending[lane] = request
            self._cond.notify_all()

    def is_current(self, request: Any) -> bool:
        """True when no newer request of the same lane was submitted (safe from any thread)."""
        with self._cond:
            return self._latest.get(request.lane) == request.request_id

    def latest_id(self, lane: str) -> int | None:
        """Id of the newest request submitted on a lane."""
        with self._cond:
            return self._latest.get(lane)

    @property
    def idle(self) -> bool:
        """True when nothing is pending, running or being stepped."""
        with self._cond:
            return not self._pending and not self._active and self._running is None

    def busy_lanes(self) -> set[str]:
        """Lanes with a request pending, running or being stepped."""
        with self._cond:
            busy = set(self._pending) | set(self._active)
            if self._running is not None:
                busy.add(self._running.lane)
            return busy

    def stop(self, timeout: float = 10.0) -> None:
        """Drop pending work, let the running step finish, and end the thread."""
        with self._cond:
            self._stopping = True
            self._pending.clear()
            self._active.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    # worker thread --------------------------------------------------------------------------
    def _next_item(self) -> tuple[str, Any] | None:
        """('new', request) or ('step', lane) by priority; None when stopping."""
        with self._cond:
            while not self._stopping and not self._pending and not self._active:
                self._cond.wait()
            if self._stopping:
                return None
            rank = self._priority.__getitem__
            lane_new = min(self._pending, key=rank) if self._pending else None
            lane_step = min(self._active, key=rank) if self._active else None
            if lane_new is not None and (lane_step is None or rank(lane_new) <= rank(lane_step)):
                request = self._pending.pop(lane_new)
                self._active.pop(lane_new, None)  # a newer request of the lane replaces it
                self._running = request
                return ("new", request)
            self._running = self._active[lane_step][0]
            return ("step", lane_step)

    def _loop(self) -> None:
        while True:
            item = self._next_item()
            if item is None:
                return
            kind, payload = item
            try:
                if kind == "new":
                    self._start(payload)
                else:
                    self._step(payload)
            finally:
                with self._cond:
                    self._running = None

    def _start(self, request: Any) -> None:
        start = time.perf_counter()
        try:
            value = self._runner(request, self.is_current)
        except SupersededError:
            return
        except Exception as error:  # every failure goes to the one handler on the GUI side
            self.failed.emit(JobFailed(request, error, traceback.format_exc()))
            return
        if isinstance(value, Iterator):
            with self._cond:
                if not self._stopping:
                    self._active[request.lane] = (request, value, start)
            return
        self._deliver(request, value, start)

    def _step(self, lane: str) -> None:
        with self._cond:
            entry = self._active.get(lane)
        if entry is None:
            return
        request, job, start = entry
        try:
            message = next(job)
        except StopIteration as finished:
            with self._cond:
                self._active.pop(lane, None)
            self._deliver(request, finished.value, start)
            return
        except SupersededError:
            with self._cond:
                self._active.pop(lane, None)
            return
        except Exception as error:
            with self._cond:
                self._active.pop(lane, None)
            self.failed.emit(JobFailed(request, error, traceback.format_exc()))
            return
        if not self.is_current(request):
            with self._cond:
                if self._active.get(lane, (None,))[0] is request:
                    self._active.pop(lane)
            job.close()
            if isinstance(message, Partial) and getattr(request, "show_stale", False):
                # finished but overtaken: shown anyway, or a stream of requests faster than
                # the job would never show anything (the receiver drops what is older)
                elapsed = (time.perf_counter() - start) * 1000
                self.partial.emit(JobDone(request, message.value, elapsed))
            return
        if isinstance(message, Partial):
            self.partial.emit(JobDone(request, message.value, (time.perf_counter() - start) * 1000))
        elif isinstance(message, str):
            self.progress.emit(request, message)

    def _deliver(self, request: Any, value: Any, start: float) -> None:
        if self.is_current(request):  # stale results never leave the thread
            self.done.emit(JobDone(request, value, (time.perf_counter() - start) * 1000.0))


class ResultRouter(QObject):
    """Receives the worker's signals on the GUI thread and calls per-lane handlers.

    A result whose id is not the newest of its lane is dropped here too (it may have been
    queued before a newer request was submitted).
    """

    def __init__(
        self,
        worker: CoalescingWorker,
        on_error: Callable[[JobFailed], None],
        on_progress: Callable[[Any, str], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._worker = worker
        self._handlers: dict[str, Callable[[JobDone], None]] = {}
        self._partial_handlers: dict[str, Callable[[JobDone], None]] = {}
        self._on_error = on_error
        self._on_progress = on_progress
        self.delivered: dict[str, int] = {}
        self.dropped = 0
        worker.done.connect(self._on_done)
        worker.partial.connect(self._on_partial)
        worker.failed.connect(self._on_failed)
        worker.progress.connect(self._on_progress_signal)

    def route(
        self,
        lane: str,
        handler: Callable[[JobDone], None],
        partial: Callable[[JobDone], None] | None = None,
    ) -> None:
        """Call ``handler(JobDone)`` for the current results of a lane (``partial`` for the
        first results a job yields before it ends)."""
        self._handlers[lane] = handler
        if partial is not None:
            self._partial_handlers[lane] = partial

    def settled(self, lane: str) -> bool:
        """True when the newest request of a lane has been delivered (or none was made)."""
        latest = self._worker.latest_id(lane)
        return latest is None or self.delivered.get(lane) == latest

    @Slot(object)
    def _on_done(self, result: JobDone) -> None:
        request = result.request
        if not self._worker.is_current(request):
            self.dropped += 1
            return
        self.delivered[request.lane] = request.request_id
        handler = self._handlers.get(request.lane)
        if handler is not None:
            handler(result)

    @Slot(object)
    def _on_partial(self, result: JobDone) -> None:
        request = result.request
        handler = self._partial_handlers.get(request.lane)
        stale_ok = getattr(request, "show_stale", False)
        if handler is not None and (stale_ok or self._worker.is_current(request)):
            handler(result)

    @Slot(object)
    def _on_failed(self, failure: JobFailed) -> None:
        if not self._worker.is_current(failure.request):
            log.info("stale request failed: %s", failure.error)
            return
        # a failed newest request counts as delivered so waiting (screenshots, tests) ends
        self.delivered[failure.request.lane] = failure.request.request_id
        self._on_error(failure)

    @Slot(object, str)
    def _on_progress_signal(self, request: Any, message: str) -> None:
        if self._on_progress is not None and self._worker.is_current(request):
            self._on_progress(request, message)
