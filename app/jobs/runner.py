"""Which job runs which request, and the order in which the worker serves the lanes."""

from __future__ import annotations

from typing import Any

from cardio_explorer.app.jobs.heart import HeartRequest, run_heart
from cardio_explorer.app.jobs.latent import LatentRequest, run_latent
from cardio_explorer.app.jobs.models import ModelsRequest, run_models
from cardio_explorer.app.jobs.morph import (
    CohortRequest,
    CurveRequest,
    IsCurrent,
    MorphRequest,
    SeriesRequest,
    run_cohort,
    run_curve,
    run_morph,
    run_series,
)
from cardio_explorer.app.jobs.movie import MovieRequest, run_movie
from cardio_explorer.app.jobs.path import PathRequest, run_path
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
LANES = ("morph", "models", "sequence", "latent", "curve", "export", "sweep", "cohort", "heart")
LANES += ("movie", "path")
BACKGROUND_LANES = ("path",)
JOBS = {
    MorphRequest: run_morph,
    ModelsRequest: run_models,
    SequenceRequest: run_sequence,
    LatentRequest: run_latent,
    CurveRequest: run_curve,
    SeriesRequest: run_series,
    SweepRequest: run_sweep,
    CohortRequest: run_cohort,
    PathRequest: run_path,
    HeartRequest: run_heart,
    MovieRequest: run_movie,
}


def run_request(request: Any, is_current: IsCurrent) -> Any:
    """Run the job of a request (on the worker thread)."""
    return JOBS[type(request)](request, is_current)
