"""Which job runs which request, and the order in which the worker serves the lanes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from cardio_explorer.app.jobs.heart import HeartRequest, run_heart
from cardio_explorer.app.jobs.latent import LatentRequest, run_latent
from cardio_explorer.app.jobs.models import (
    CheckpointRequest,
    ModelsRequest,
    run_checkpoint,
    run_models,
)
from cardio_explorer.app.jobs.morph import (
    CohortRequest,
    CurveRequest,
    MorphRequest,
    SeriesRequest,
    run_cohort,
    run_curve,
    run_morph,
    run_series,
)
from cardio_explorer.app.jobs.movie import MovieRequest, run_movie
from cardio_explorer.app.jobs.path import PathRequest, run_path
from cardio_explorer.app.jobs.protocol import IsCurrent, Mesher, Runner
from cardio_explorer.app.jobs.sequence import (
    SequenceRequest,
    SweepRequest,
    run_sequence,
    run_sweep,
)

# Highest priority first: what a slider waits for comes before what a plot waits for.
# "models" loads the models not needed for the first heart, right after it is drawn.
# "path" (the cached morph path) builds in the background, after everything a user asked for;
# waiting for it is not being busy.
LANES = (
    "morph",
    "models",
    "checkpoint",
    "sequence",
    "latent",
    "curve",
    "export",
    "sweep",
    "cohort",
    "heart",
)
LANES += ("movie", "path")
BACKGROUND_LANES = ("path",)
# request type -> job(request, is_current); the jobs in MESH_JOBS also take a mesher
JOBS: Mapping[type, Callable[..., Any]] = {
    ModelsRequest: run_models,
    CheckpointRequest: run_checkpoint,
    LatentRequest: run_latent,
    CurveRequest: run_curve,
    SeriesRequest: run_series,
    SweepRequest: run_sweep,
    CohortRequest: run_cohort,
    HeartRequest: run_heart,
}
MESH_JOBS: Mapping[type, Callable[..., Any]] = {
    MorphRequest: run_morph,
    SequenceRequest: run_sequence,
    PathRequest: run_path,
    MovieRequest: run_movie,
}


def make_runner(mesher: Mesher) -> Runner:
    """The worker's runner: each request to its job, the meshing jobs with ``mesher`` (surface
    extraction needs VTK, which the window passes in from viewer; nothing here imports it)."""
    jobs = {**JOBS, **{kind: partial(job, mesher=mesher) for kind, job in MESH_JOBS.items()}}

    def run_request(request: Any, is_current: IsCurrent) -> Any:
        """Run the job of a request (on the worker thread)."""
        return jobs[type(request)](request, is_current)

    return run_request
