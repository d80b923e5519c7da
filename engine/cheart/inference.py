"""CHeart inference: sequence completion from ED, generation from conditions, condition sweeps
and population curves of the clinical phenotypes.

Every result is a 3D+t :class:`LabelVolume` (t, z, y, x) on the model grid with its true affine
and frame duration, the per-frame latent codes, and the warnings (conditions outside the
training range) that the GUI shows beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cardio_explorer.engine.cheart.calibration import calibrated_completion
from cardio_explorer.engine.cheart.conditions import (
    parse_conditions,
    parse_sex,
    with_condition,
)
from cardio_explorer.engine.cheart.data import to_model_grid
from cardio_explorer.engine.cheart.groups import group_components
from cardio_explorer.engine.cheart.model import CHeartModel
from cardio_explorer.engine.cheart.motion_code import N_DESCRIPTORS
from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.engine.subject import Conditions
from cardio_explorer.engine.volume import LabelVolume

PHENOTYPE_NAMES = ("lvedv_ml", "lvesv_ml", "lvef", "rvedv_ml", "rvesv_ml", "rvef", "lvm_g")
GENERATION_BATCH = 4  # sequences decoded together (B x 20 frames per decoder call)


@dataclass(frozen=True)
class SequenceResult:
    """A generated or completed sequence: labels (t, z, y, x), latents [T, z], warnings."""

    labels: LabelVolume
    latents: np.ndarray
    conditions: Conditions
    warnings: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return self.labels.n_frames


def _condition_tensor(model: CHeartModel, conditions: Sequence[Conditions]) -> torch.Tensor:
    return torch.from_numpy(model.stats.matrix(conditions)).to(model.device)


def _results(
    model: CHeartModel,
    labels: np.ndarray,
    latents: np.ndarray,
    conditions: Sequence[Conditions],
    affines: Sequence[np.ndarray],
    seeds: Sequence[int | None],
    name: str,
) -> list[SequenceResult]:
    out = []
    for i, c in enumerate(conditions):
        volume = LabelVolume(
            data=labels[i],
            affine=affines[i],
            frame_duration_ms=model.frame_duration_ms,
            name=name,
        )
        warnings = tuple(model.stats.out_of_range(c))
        out.append(SequenceResult(volume, latents[i].astype(np.float32), c, warnings, seeds[i]))
    return out


def labels_on_device(
    model: CHeartModel,
    z0: torch.Tensor,
    conditions: Sequence[Conditions],
    first_frames: torch.Tensor | None = None,
    motion_noise: torch.Tensor | None = None,
    calibrate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoder batch: frame-0 latents [B, z] on the device -> (uint8 labels
    [B, T, D, H, W], latents [B, T, z]), both left on the model's device.

    ``first_frames``: labels [B, D, H, W] on the model grid that a motion model moves (the
    given ED in completion); None moves the decoded frame 0. ``motion_noise`` [B, m]: standard
    normals that draw a model's motion code from its prior (None: the prior's mean). A
    motion-code model completes given frames calibrated (engine/cheart/calibration.py) unless
    ``calibrate`` is False."""
    with torch.inference_mode(), autocast(model.device):
        c = _condition_tensor(model, conditions)
        completing = first_frames is not None and motion_noise is None
        if calibrate and completing and model.net.motion_code is not None:
            return calibrated_completion(model.net, z0, c, first_frames)
        out = model.net.generate(z0, c, source=first_frames, motion_noise=motion_noise)
        return out.labels(), out.latents.float()


def decode_from_z(
    model: CHeartModel,
    z0: np.ndarray | torch.Tensor,
    conditions: Sequence[Conditions],
    first_frames: np.ndarray | None = None,
    motion_noise: np.ndarray | None = None,
    calibrate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame-0 latents [B, z] + conditions -> (labels [B, T, D, H, W], latents [B, T, z]);
    ``first_frames`` as in ``labels_on_device`` (uint8 [B, D, H, W]); ``motion_noise`` [B, m]
    (a draw's ``motion``) samples a motion-code model's motion, None takes its prior's mean;
    ``calibrate`` as in ``labels_on_device``."""
    if isinstance(z0, torch.Tensor):
        z0 = z0.to(device=model.device, dtype=torch.float32)
    else:
        z0 = torch.from_numpy(np.asarray(z0, dtype=np.float32)).to(model.device)
    labels, latents = [], []
    for start in range(0, len(conditions), GENERATION_BATCH):
        part = list(conditions[start : start + GENERATION_BATCH])
        first = None
        if first_frames is not None:
            first = torch.from_numpy(np.asarray(first_frames[start : start + len(part)]))
            first = first.to(device=model.device, dtype=torch.int64)
        noise = None
        if motion_noise is not None and model.net.motion_code is not None:
            noise = torch.from_numpy(np.asarray(motion_noise[start : start + len(part)]))
            noise = noise.to(device=model.device, dtype=torch.float32)
        z = z0[start : start + len(part)]
        lab, lat = labels_on_device(model, z, part, first, noise, calibrate)
        labels.append(lab.cpu().numpy())
        latents.append(lat.cpu().numpy())
    return np.concatenate(labels), np.concatenate(latents)


def encode_ed(
    model: CHeartModel, ed: LabelVolume, conditions: Conditions | dict[str, Any]
) -> tuple[np.ndarray, LabelVolume]:
    """Posterior mean [z] of an ED frame, and the frame resampled onto the model grid."""
    c = parse_conditions(conditions)
    if not isinstance(ed, LabelVolume):
        raise CardioInputError("ED frame", f"expected a LabelVolume, got {type(ed).__name__}")
    if ed.is_4d:
        raise CardioInputError(ed.name or "ED frame", "expected one 3D frame, got a 3D+t volume")
    on_grid = to_model_grid(ed, model.config.grid, model.config.spacing)
    if not on_grid.data.any():
        raise CardioInputError(ed.name or "ED frame", "holds no labelled voxels")
    x = torch.from_numpy(on_grid.data.astype(np.int64))[None].to(model.device)
    with torch.inference_mode(), autocast(model.device):
        mu, _ = model.net.encode(x, _condition_tensor(model, [c]))
    return mu[0].float().cpu().numpy(), on_grid


def complete_sequence(
    model: CHeartModel, ed: LabelVolume, conditions: Conditions | dict[str, Any]
) -> SequenceResult:
    """Complete a cycle from its ED frame: encode (posterior mean), unroll, decode all frames
    (a motion model moves the given ED frame itself)."""
    c = parse_conditions(conditions)
    mu, on_grid = encode_ed(model, ed, c)
    labels, latents = decode_from_z(model, mu[None], [c], on_grid.data[None])
    name = f"{ed.name} completed" if ed.name else "completed sequence"
    return _results(model, labels, latents, [c], [on_grid.affine], [None], name)[0]


def prior_samples(n: int, z_dim: int, seed: int | None) -> np.ndarray:
    """z ~ N(0, I) [n, z_dim], reproducible for a seed (the same on CPU and CUDA)."""
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return torch.randn(n, z_dim, generator=generator).numpy()


@dataclass(frozen=True)
class PriorDraw:
    """The randomness of ``n`` generated hearts: standard normals [n, z], uniforms [n] that
    pick the fitted prior's mixture component (unused without a fitted prior), and standard
    normals [n, m] that draw a motion-code model's motion (m = 0 without one)."""

    noise: np.ndarray
    uniforms: np.ndarray
    motion: np.ndarray

    def __len__(self) -> int:
        return len(self.noise)

    def subset(self, start: int, stop: int) -> PriorDraw:
        """Draws ``start:stop``."""
        return PriorDraw(self.noise[start:stop], self.uniforms[start:stop], self.motion[start:stop])

    def repeated(self, times: int) -> PriorDraw:
        """Every draw ``times`` times in a row (a sweep keeps one individual)."""
        return PriorDraw(
            *(np.repeat(x, times, axis=0) for x in (self.noise, self.uniforms, self.motion))
        )


def prior_draw(model: CHeartModel, n: int, seed: int | None) -> PriorDraw:
    """``n`` draws, reproducible for a seed (the motion normals from a stream of their own,
    so a model without a motion code draws the hearts it drew before)."""
    noise = prior_samples(n, model.config.z_dim, seed)
    rng = np.random.default_rng(None if seed is None else [int(seed), 1])
    motion_rng = np.random.default_rng(None if seed is None else [int(seed), 2])
    width = N_DESCRIPTORS if model.config.motion_code else 0
    motion = motion_rng.standard_normal((n, width)).astype(np.float32)
    return PriorDraw(noise, rng.random(n), motion)


def frame0_latents(
    model: CHeartModel,
    draw: PriorDraw,
    conditions: Sequence[Conditions],
    components: np.ndarray | None = None,
) -> np.ndarray:
    """Frame-0 latents [n, z] of draws at conditions (one per draw): the model's fitted prior
    p(z0 | c) when it has one (engine/cheart/prior.py), else z = the normals (N(0, I)).

    ``components``: mixture components to use (a sweep keeps an individual's); None picks them
    from the draws' uniforms at these conditions.
    """
    prior = model.prior
    if prior is None:
        return draw.noise
    matrix = model.stats.matrix(conditions)
    if components is None:
        components = prior.choose(draw.uniforms, matrix)
    return prior.sample(draw.noise, matrix, components)


def generate_sequences(
    model: CHeartModel,
    conditions: Conditions | dict[str, Any],
    n_samples: int = 1,
    seed: int | None = 0,
    group: str | None = None,
) -> list[SequenceResult]:
    """``n_samples`` sequences for one set of conditions, z0 from the prior (see
    :func:`frame0_latents`) with ``seed``; ``group`` ('NOR', 'DCM', ...) takes that component
    of the prior's mixture, None draws it from p(group | conditions)."""
    c = parse_conditions(conditions)
    if int(n_samples) < 1:
        raise CardioInputError("n_samples", f"must be at least 1, got {n_samples}")
    components = group_components(model, group, int(n_samples))
    draw = prior_draw(model, int(n_samples), seed)
    z = frame0_latents(model, draw, [c] * int(n_samples), components)
    labels, latents = decode_from_z(model, z, [c] * int(n_samples), motion_noise=draw.motion)
    affine = model.grid_affine()
    seeds = [seed] * int(n_samples)
    return _results(
        model,
        labels,
        latents,
        [c] * int(n_samples),
        [affine] * len(seeds),
        seeds,
        "generated sequence",
    )


def condition_sweep(
    model: CHeartModel,
    base_conditions: Conditions | dict[str, Any],
    name: str,
    values: Sequence[Any],
    z: np.ndarray | None = None,
    seed: int | None = 0,
    group: str | None = None,
) -> list[SequenceResult]:
    """One condition varied over ``values``, e.g. ageing the same heart from 20 to 80: the
    frame-0 latent ``z`` fixed, or (default) one prior draw from ``seed`` whose noise and
    mixture component (``group``'s, or drawn at the base conditions when None) stay fixed while
    the prior's mean follows the condition."""
    base = parse_conditions(base_conditions)
    if len(values) == 0:
        raise CardioInputError("values", "the sweep needs at least one value")
    components = group_components(model, group, 1)
    if z is not None and components is not None:
        raise CardioInputError("group", "a sweep of a given z has no prior component to choose")
    swept = [with_condition(base, name, v) for v in values]
    if z is None:
        draw = prior_draw(model, 1, seed)
        if model.prior is not None and components is None:
            components = model.prior.choose(draw.uniforms, model.stats.matrix([base]))
        repeated = draw.repeated(len(swept))
        motion = repeated.motion
        z0 = frame0_latents(
            model, repeated, swept, None if components is None else components.repeat(len(swept))
        )
    else:
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        if z.shape[0] != model.config.z_dim:
            raise CardioInputError("z", f"expected {model.config.z_dim} values, got {z.shape[0]}")
        z0 = np.repeat(z[None], len(swept), axis=0)
        motion = None
    labels, latents = decode_from_z(model, z0, swept, motion_noise=motion)
    affine = model.grid_affine()
    return _results(
        model, labels, latents, swept, [affine] * len(swept), [seed] * len(swept), f"{name} sweep"
    )


def end_systolic_frame(sequence: LabelVolume) -> int:
    """Frame with the smallest LV blood pool (ES) of a 3D+t label volume."""
    lv = (sequence.data == 1).reshape(sequence.n_frames, -1).sum(axis=1)
    return int(np.argmin(lv))


def sequence_phenotypes(sequence: LabelVolume, wall: bool = False) -> dict[str, float]:
    """Phenotypes of a cycle (``PHENOTYPE_NAMES``): ED = frame 0, ES = frame of minimal LV
    volume, measured by ``measure_phenotypes``.

    ``wall`` adds the maximum wall thickness (slower; the curves and evaluation skip it).
    """
    ed, es = sequence.frame(0), sequence.frame(end_systolic_frame(sequence))
    measured = measure_phenotypes(ed, es, wall=wall).as_dict()
    names = (*PHENOTYPE_NAMES, "max_wall_mm") if wall else PHENOTYPE_NAMES
    return {name: measured[name] for name in names}


def population_curves(
    model: CHeartModel,
    name: str,
    values: Sequence[float],
    n_per_step: int = 20,
    sexes: Sequence[str] = ("F", "M"),
    seed: int = 0,
    base: Conditions | dict[str, Any] | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    """Mean and 95 % interval (2.5-97.5 percentiles) of each phenotype over ``n_per_step``
    generated sequences per value of condition ``name``, per sex.

    The other conditions are ``base`` (default: the training means of each sex). The same prior
    draws are used at every step, so the curves show the condition's effect, not noise;
    ``group`` fixes their prior component (None: drawn from p(group | conditions) at each step).
    Returns {"name", "values", "n_per_step", "phenotypes", "curves": {sex: {phenotype:
    {"mean", "low", "high"}}}, "warnings"} with lists aligned with ``values``.
    """
    if name == "sex":
        raise CardioInputError("name", "sex is already one curve per sex; sweep another condition")
    if int(n_per_step) < 1:
        raise CardioInputError("n_per_step", f"must be at least 1, got {n_per_step}")
    components = group_components(model, group, int(n_per_step))
    draw = prior_draw(model, int(n_per_step), seed)
    curves: dict[str, Any] = {}
    warnings: list[str] = []
    for sex in sexes:
        sex = parse_sex(sex)
        start = (
            model.stats.typical(sex)
            if base is None
            else with_condition(parse_conditions(base), "sex", sex)
        )
        per_phenotype: dict[str, dict[str, list[float]]] = {
            p: {"mean": [], "low": [], "high": []} for p in PHENOTYPE_NAMES
        }
        for value in values:
            c = with_condition(start, name, value)
            warnings.extend(w for w in model.stats.out_of_range(c) if w not in warnings)
            z0 = frame0_latents(model, draw, [c] * len(draw), components)
            labels, _ = decode_from_z(model, z0, [c] * len(draw), motion_noise=draw.motion)
            affine = model.grid_affine()
            table = [sequence_phenotypes(LabelVolume(data=seq, affine=affine)) for seq in labels]
            for p in PHENOTYPE_NAMES:
                sample = np.array([row[p] for row in table])
                per_phenotype[p]["mean"].append(float(sample.mean()))
                per_phenotype[p]["low"].append(float(np.percentile(sample, 2.5)))
                per_phenotype[p]["high"].append(float(np.percentile(sample, 97.5)))
        curves[sex] = per_phenotype
    return {
        "name": name,
        "values": [float(v) for v in values],
        "n_per_step": int(n_per_step),
        "phenotypes": list(PHENOTYPE_NAMES),
        "curves": curves,
        "warnings": warnings,
    }
