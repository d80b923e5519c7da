"""Worker side of movie export: the morph meshed at evenly spaced alphas (numpy, any thread)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cardio_explorer.app.jobs.morph import require
from cardio_explorer.app.jobs.protocol import IsCurrent, Mesher
from cardio_explorer.app.jobs.query import MorphQuery
from cardio_explorer.viewer.mesh import Mesh


@dataclass(frozen=True)
class MovieRequest:
    """Mesh the morph of the current controls at ``n_frames`` alphas from 0 to 1."""

    request_id: int
    engines: Any
    query: MorphQuery
    smoothing: int
    n_frames: int
    path: Path
    lane: ClassVar[str] = "movie"
    error_title: ClassVar[str] = "Cannot write the movie"


def run_movie(request: MovieRequest, is_current: IsCurrent, mesher: Mesher) -> Iterator[str]:
    """Meshes of every frame (numpy: any thread), one alpha per step."""
    morph = require(request.engines, "label_vae")
    frames: list[dict[int, Mesh]] = []
    for i, alpha in enumerate(np.linspace(0.0, 1.0, request.n_frames)):
        step = request.query.decode(morph, alpha=alpha)
        frames.append(mesher(step.labels, request.smoothing))
        yield f"movie: frame {i + 1}/{request.n_frames}"
    return tuple(frames)
