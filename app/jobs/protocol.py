"""What travels between the GUI thread and the worker: request ids, partial results, outcomes.

Qt-free, so job functions (app/jobs) and the worker thread (app/gui/workers.py) share it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cardio_explorer.engine.volume import LabelVolume
from cardio_explorer.viewer.mesh import Mesh

_IDS = itertools.count(1)


def next_request_id() -> int:
    """A new, monotonically increasing request id (process-wide)."""
    return next(_IDS)


class SupersededError(Exception):
    """Raised inside a job to abandon it because a newer request of its lane arrived."""


@dataclass(frozen=True)
class Partial:
    """Yielded by a generator job: a first result to draw now (e.g. surfaces before read-outs)."""

    value: Any


@dataclass(frozen=True)
class JobDone:
    """A finished job: its request, what it returned, and the worker-side time in ms."""

    request: Any
    value: Any
    elapsed_ms: float


@dataclass(frozen=True)
class JobFailed:
    """A failed job: its request, the exception and the formatted traceback."""

    request: Any
    error: BaseException
    trace: str


Runner = Callable[[Any, Callable[[Any], bool]], Any]
IsCurrent = Callable[[Any], bool]
# (3D labels, smoothing iterations) -> numpy mesh per structure. Extraction uses VTK, so the
# window passes viewer.surfaces.extract_meshes in (app/gui/workers.py) and jobs stay VTK-free.
Mesher = Callable[[LabelVolume, int], dict[int, Mesh]]
