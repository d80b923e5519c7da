"""The whole morph path decoded once (worker thread): labels, meshes and read-outs per alpha.

Playback and slider scrubbing then draw from this cache instead of asking for a decode per
tick (a tick every 40 ms cannot wait for a 100-300 ms decode). Frames come back in chunks,
coarse alphas first, so a partly built path already plays the whole sweep.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cardio_explorer.app.jobs.models import Engines
from cardio_explorer.app.jobs.morph import readout_phenotypes, require
from cardio_explorer.app.jobs.protocol import IsCurrent, Mesher, Partial
from cardio_explorer.app.jobs.query import MorphQuery
from cardio_explorer.engine.metrics.phenotypes import Phenotypes
from cardio_explorer.engine.volume import LabelVolume
from cardio_explorer.viewer.mesh import Mesh

PATH_STEPS = 21  # alpha 0, 0.05, ..., 1
CPU_CHUNK = 1  # alphas per step on a CPU: batching gains nothing there, and a short step
# lets a slider request (higher lane priority) run between chunks


def path_alphas(steps: int = PATH_STEPS) -> tuple[float, ...]:
    """Evenly spaced alphas over [0, 1]."""
    return tuple(float(a) for a in np.linspace(0.0, 1.0, steps))


def coarse_to_fine(n: int) -> list[int]:
    """Indices 0..n-1, every 4th first, then every 2nd, then the rest."""
    return sorted(range(n), key=lambda i: (i % 4 != 0, i % 2 != 0, i))


@dataclass(frozen=True)
class PathRequest:
    """Decode the morph (ED and ES) at every path alpha; meshes of the query's phase (its
    alpha is not used)."""

    request_id: int
    engines: Engines
    query: MorphQuery
    smoothing: int = 10
    alphas: tuple[float, ...] = path_alphas()
    lane: ClassVar[str] = "path"


@dataclass(frozen=True, eq=False)
class PathFrame:
    """One alpha of the path: what a morph step shows, with numpy meshes instead of VTK."""

    index: int
    alpha: float
    labels: LabelVolume  # the shown phase
    ed: LabelVolume
    es: LabelVolume
    latent_path: np.ndarray
    meshes: dict[int, Mesh]
    phenotypes: Phenotypes
    inference_ms: float
    surface_ms: float


def run_path(request: PathRequest, is_current: IsCurrent, mesher: Mesher) -> Iterator[Partial]:
    """Yields a Partial with a tuple of PathFrames per chunk; returns the number of frames."""
    morph = require(request.engines, "label_vae")
    n = len(request.alphas)
    chunk = n if morph.device.type == "cuda" else CPU_CHUNK
    order = coarse_to_fine(n)
    query = request.query
    for start in range(0, n, chunk):
        indices = order[start : start + chunk]
        alphas = [request.alphas[i] for i in indices]
        began = time.perf_counter()
        ed = query.series(morph, "ED", alphas)
        es = query.series(morph, "ES", alphas)
        inference_ms = (time.perf_counter() - began) * 1000.0 / len(alphas)
        frames = []
        for index, d, s in zip(indices, ed, es, strict=True):
            shown = d if query.phase == "ED" else s
            began = time.perf_counter()
            meshes = mesher(shown.labels, request.smoothing)
            surface_ms = (time.perf_counter() - began) * 1000.0
            frames.append(
                PathFrame(
                    index,
                    request.alphas[index],
                    shown.labels,
                    d.labels,
                    s.labels,
                    np.asarray(shown.latent_path),
                    meshes,
                    readout_phenotypes(d.labels, s.labels),
                    inference_ms,
                    surface_ms,
                )
            )
        yield Partial(tuple(frames))
    return n
