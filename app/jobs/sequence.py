"""Engine work for the clinical-conditions panel (CHeart), run on the worker thread.

A generated or completed sequence comes back with the surfaces of all its frames already
extracted (playback then only swaps them), its volume curves, phenotypes and latent trajectory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cardio_explorer.app.jobs.latent import fit_pca
from cardio_explorer.app.jobs.models import Engines
from cardio_explorer.app.jobs.morph import images_for, require, spade_grid
from cardio_explorer.app.jobs.protocol import IsCurrent, Mesher, SupersededError
from cardio_explorer.engine.cheart.inference import (
    complete_sequence,
    end_systolic_frame,
    generate_sequences,
    population_curves,
    sequence_phenotypes,
)
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.metrics.phenotypes import volume_curve
from cardio_explorer.engine.subject import Conditions
from cardio_explorer.engine.volume import ImageVolume, LabelVolume
from cardio_explorer.viewer.mesh import Mesh

SWEEP_STEPS = 7


@dataclass(frozen=True)
class SequenceRequest:
    """Generate ``n_samples`` sequences from conditions, or complete one from an ED frame."""

    request_id: int
    engines: Engines
    mode: str  # "generate" or "complete"
    conditions: Conditions
    n_samples: int = 1
    seed: int = 0
    show_image: bool = False
    smoothing: int = 10
    ed: LabelVolume | None = None
    group: str | None = None  # generate: the prior component ('NOR', ...), None: drawn
    lane: ClassVar[str] = "sequence"


@dataclass(frozen=True, eq=False)
class SequenceSample:
    """One sequence ready to play: labels (t, z, y, x), surfaces per frame, curves, codes."""

    labels: LabelVolume
    meshes: tuple[dict[int, Mesh], ...]  # per frame, numpy: VTK is built on the GUI thread
    volumes: dict[str, np.ndarray]  # 'lv', 'myo', 'rv' -> (T,) mL
    phenotypes: dict[str, float]
    es_frame: int
    latents: np.ndarray  # (T, z)
    warnings: tuple[str, ...]
    image: ImageVolume | None = None
    image_labels: LabelVolume | None = None  # labels on the image's grid


@dataclass(frozen=True, eq=False)
class SequenceOutput:
    """All samples of one request, and their trajectories in one shared 2D embedding."""

    mode: str
    conditions: Conditions
    samples: tuple[SequenceSample, ...]
    trajectories: np.ndarray  # (n_samples, T, 2), PCA of all samples' codes
    inference_ms: float

    @property
    def frame_duration_ms(self) -> float | None:
        """Time between frames of the sequences."""
        return self.samples[0].labels.frame_duration_ms


def run_sequence(request: SequenceRequest, is_current: IsCurrent, mesher: Mesher) -> Iterator[str]:
    """Decode, then one sample's surfaces (and images) per step."""

    model = require(request.engines, "cheart")
    start = time.perf_counter()
    if request.mode == "complete":
        if request.ed is None:
            raise CardioInputError("complete", "there is no current ED frame to complete from")
        results = [complete_sequence(model, request.ed, request.conditions)]
    elif request.mode == "generate":
        results = generate_sequences(
            model, request.conditions, request.n_samples, request.seed, request.group
        )
    else:
        raise CardioInputError("sequence mode", f"unknown {request.mode!r}")
    inference_ms = (time.perf_counter() - start) * 1000.0
    yield "decoded the sequence"

    samples = []
    for i, result in enumerate(results):
        meshes = []
        for t in range(result.labels.n_frames):
            meshes.append(mesher(result.labels.frame(t), request.smoothing))
            if not is_current(request):
                raise SupersededError
        image = image_labels = None
        if request.show_image and request.engines.spade is not None:
            image = images_for(request.engines, result.labels, request.seed)
            grid = spade_grid(request.engines, result.labels)
            image_labels = None if grid is result.labels else grid
        samples.append(
            SequenceSample(
                result.labels,
                tuple(meshes),
                volume_curve(result.labels),
                sequence_phenotypes(result.labels),
                end_systolic_frame(result.labels),
                np.asarray(result.latents, dtype=np.float64),
                tuple(result.warnings),
                image,
                image_labels,
            )
        )
        yield f"surfaces of sample {i + 1}/{len(results)}"
    codes = np.stack([s.latents for s in samples])  # (n, T, z)
    flat = codes.reshape(-1, codes.shape[-1])
    mean, axes = fit_pca(flat)
    trajectories = ((flat - mean) @ axes.T).reshape(*codes.shape[:2], 2)
    return SequenceOutput(
        request.mode, request.conditions, tuple(samples), trajectories, inference_ms
    )


@dataclass(frozen=True)
class SweepRequest:
    """Population curves of the phenotypes while one condition sweeps its training range."""

    request_id: int
    engines: Engines
    condition: str
    values: tuple[float, ...]
    base: Conditions
    n_per_step: int = 4
    seed: int = 0
    group: str | None = None  # the hearts' prior component ('NOR', ...), None: drawn
    lane: ClassVar[str] = "sweep"


@dataclass(frozen=True)
class SweepOutput:
    """{sex: {phenotype: {'mean', 'low', 'high'}}} over ``values`` of ``condition``."""

    condition: str
    values: tuple[float, ...]
    curves: dict[str, dict[str, dict[str, list[float]]]]
    warnings: tuple[str, ...]


def sweep_values(model: Any, condition: str, steps: int = SWEEP_STEPS) -> tuple[float, ...]:
    """Evenly spaced values over the model's training range of one condition."""
    low, high = model.stats.low[condition], model.stats.high[condition]
    return tuple(float(v) for v in np.linspace(low, high, steps))


def run_sweep(request: SweepRequest, is_current: IsCurrent) -> Iterator[str]:
    """One sweep value per step (both sexes, the same prior samples at every value)."""

    model = require(request.engines, "cheart")
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    warnings: list[str] = []
    for i, value in enumerate(request.values):
        part = population_curves(
            model,
            request.condition,
            [value],
            n_per_step=request.n_per_step,
            seed=request.seed,
            base=request.base,
            group=request.group,
        )
        for sex, table in part["curves"].items():
            for name, band in table.items():
                target = curves.setdefault(sex, {}).setdefault(
                    name, {"mean": [], "low": [], "high": []}
                )
                for key in ("mean", "low", "high"):
                    target[key].extend(band[key])
        warnings.extend(w for w in part["warnings"] if w not in warnings)
        yield f"sweep {i + 1}/{len(request.values)}"
    return SweepOutput(request.condition, request.values, curves, tuple(warnings))
