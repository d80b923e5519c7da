"""The worker thread: newest-per-lane coalescing, stale results dropped, one error handler."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import ClassVar

import pytest

from cardio_explorer.app.gui.workers import CoalescingWorker, ResultRouter
from cardio_explorer.app.jobs.protocol import SupersededError, next_request_id

pytestmark = pytest.mark.gui


@dataclass(frozen=True)
class Slow:
    request_id: int
    value: int
    delay: float = 0.0
    lane: ClassVar[str] = "fast"


@dataclass(frozen=True)
class Long:
    request_id: int
    steps: int
    lane: ClassVar[str] = "long"


class Recorder:
    def __init__(self):
        self.started: list[int] = []
        self.results: list[tuple[str, int]] = []
        self.threads: set[str] = set()
        self.errors: list = []
        self.order: list[str] = []
        self.gate = threading.Event()
        self.gate.set()

    def runner(self, request, is_current):
        self.started.append(request.request_id)
        if isinstance(request, Long):
            return self._long(request)
        self.gate.wait(5)
        time.sleep(request.delay)
        if request.value < 0:
            raise ValueError("negative")
        self.order.append("fast")
        return request.value

    def _long(self, request):
        for i in range(request.steps):
            self.order.append("long")
            time.sleep(0.01)
            yield f"step {i}"
        return request.steps

    def handler(self, result):
        self.threads.add(threading.current_thread().name)
        self.results.append((result.request.lane, result.value))


@pytest.fixture
def setup(qtbot):
    recorder = Recorder()
    worker = CoalescingWorker(recorder.runner, ("fast", "long"))
    router = ResultRouter(worker, recorder.errors.append)
    router.route("fast", recorder.handler)
    router.route("long", recorder.handler)
    yield recorder, worker, router
    worker.stop()


def test_a_waiting_request_is_superseded_by_a_newer_one(qtbot, setup):
    recorder, worker, router = setup
    recorder.gate.clear()  # hold the first request inside the runner
    first = Slow(next_request_id(), 1)
    worker.submit(first)
    qtbot.waitUntil(lambda: recorder.started == [first.request_id])
    waiting = [Slow(next_request_id(), v) for v in (2, 3, 4)]
    for request in waiting:
        worker.submit(request)
    recorder.gate.set()
    qtbot.waitUntil(lambda: router.settled("fast") and worker.idle, timeout=5000)
    # only the newest pending request ran after the first; the first's result was stale
    assert recorder.started == [first.request_id, waiting[-1].request_id]
    assert recorder.results == [("fast", 4)]
    assert recorder.threads == {threading.main_thread().name}


def test_a_result_of_a_superseded_running_request_never_arrives(qtbot, setup):
    recorder, worker, router = setup
    slow = Slow(next_request_id(), 10, delay=0.3)
    worker.submit(slow)
    qtbot.waitUntil(lambda: recorder.started == [slow.request_id])
    worker.submit(Slow(next_request_id(), 20))
    qtbot.waitUntil(lambda: router.settled("fast") and worker.idle, timeout=5000)
    qtbot.wait(50)
    assert recorder.results == [("fast", 20)]


def test_generator_jobs_yield_to_the_higher_priority_lane(qtbot, setup):
    recorder, worker, router = setup
    worker.submit(Long(next_request_id(), 30))
    qtbot.waitUntil(lambda: "long" in recorder.order)
    worker.submit(Slow(next_request_id(), 5))
    qtbot.waitUntil(lambda: router.settled("long") and worker.idle, timeout=5000)
    assert ("fast", 5) in recorder.results
    assert ("long", 30) in recorder.results
    # the fast request ran between two steps of the long one
    fast_at = recorder.order.index("fast")
    assert 0 < fast_at < len(recorder.order) - 1


def test_errors_go_to_the_one_handler_and_count_as_delivered(qtbot, setup):
    recorder, worker, router = setup
    bad = Slow(next_request_id(), -1)
    worker.submit(bad)
    qtbot.waitUntil(lambda: bool(recorder.errors), timeout=5000)
    failure = recorder.errors[0]
    assert failure.request == bad
    assert isinstance(failure.error, ValueError)
    assert "negative" in failure.trace
    assert router.settled("fast")


def test_superseded_error_inside_a_job_is_silent(qtbot):
    errors, results = [], []

    def runner(request, is_current):
        raise SupersededError

    worker = CoalescingWorker(runner, ("fast",))
    router = ResultRouter(worker, errors.append)
    router.route("fast", results.append)
    try:
        worker.submit(Slow(next_request_id(), 1))
        qtbot.waitUntil(lambda: worker.idle, timeout=5000)
        qtbot.wait(20)
        assert errors == []
        assert results == []
    finally:
        worker.stop()


def test_unknown_lane_is_refused(setup):
    _, worker, _ = setup

    @dataclass(frozen=True)
    class Odd:
        request_id: int
        lane: ClassVar[str] = "odd"

    with pytest.raises(ValueError, match="unknown lane"):
        worker.submit(Odd(1))
