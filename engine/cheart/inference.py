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

from cardio_explorer.engine.cheart.calibration import calibrated_sequences
from cardio_explorer.engine.cheart.conditions import (
    parse_conditions,
    parse_sex,
    with_condition,
)
from cardio_explorer.engine.cheart.data import to_model_grid
from cardio_explorer.engine.cheart.draws import drawn_hearts, prior_draw
from cardio_explorer.engine.cheart.groups import group_components
from cardio_explorer.engine.cheart.model import CHeartModel
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
    motion_codes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoder batch: frame-0 latents [B, z] on the device -> (uint8 labels
    [B, T, D, H, W], latents [B, T, z]), both left on the model's device.

    ``first_frames``: labels [B, D, H, W] on the model grid that a motion model moves (the
    given ED in completion); None moves the decoded frame 0. ``motion_noise`` [B, m]: standard
    normals that draw a model's motion code from its prior (None: the prior's mean);
    ``motion_codes`` [B, m]: the codes themselves (from a group's motion prior). A
    motion-code model's sequences are calibrated to eject what the code says
    (engine/cheart/calibration.py) unless ``calibrate`` is False."""
    with torch.inference_mode(), autocast(model.device):
        c = _condition_tensor(model, conditions)
        if calibrate and model.net.motion_code is not None:
            return calibrated_sequences(model.net, z0, c, first_frames, motion_noise, motion_codes)
        out = model.net.generate(
            z0, c, source=first_frames, motion_noise=motion_noise, motion_code=motion_codes
        )
        return out.labels(), out.latents.float()


def decode_from_z(
    model: CHeartModel,
    z0: np.ndarray | torch.Tensor,
    conditions: Sequence[Conditions],
    first_frames: np.ndarray | None = None,
    motion_noise: np.ndarray | None = None,
    calibrate: bool = True,
    motion_codes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame-0 latents [B, z] + conditions -> (labels [B, T, D, H, W], latents [B, T, z]);
    ``first_frames`` as in ``labels_on_device`` (uint8 [B, D, H, W]); ``motion_noise`` [B, m]
    (a draw's ``motion``) samples a motion-code model's motion, None takes its prior's mean;
    ``calibrate`` as in ``labels_on_device``; ``motion_codes`` [B, m] the codes themselves
    (``draws.group_motion_codes``), used instead of ``motion_noise``."""
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
        noise = codes = None
        if model.net.motion_code is not None:
            noise = _part(motion_noise, start, len(part), model.device)
            codes = _part(motion_codes, start, len(part), model.device)
        z = z0[start : start + len(part)]
        lab, lat = labels_on_device(model, z, part, first, noise, calibrate, codes)
        labels.append(lab.cpu().numpy())
        latents.append(lat.cpu().numpy())
    return np.concatenate(labels), np.concatenate(latents)


def _part(
    values: np.ndarray | None, start: int, n: int, device: torch.device
) -> torch.Tensor | None:
    if values is None:
        return None
    return torch.from_numpy(np.asarray(values[start : start + n], dtype=np.float32)).to(device)


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


def generate_sequences(
    model: CHeartModel,
    conditions: Conditions | dict[str, Any],
    n_samples: int = 1,
    seed: int | None = 0,
    group: str | None = None,
) -> list[SequenceResult]:
    """``n_samples`` sequences for one set of conditions, z0 from the prior (see
    ``draws.frame0_latents``) with ``seed``; ``group`` ('NOR', 'DCM', ...) takes that component
    of the prior's mixture, None draws it from p(group | conditions)."""
    c = parse_conditions(conditions)
    if int(n_samples) < 1:
        raise CardioInputError("n_samples", f"must be at least 1, got {n_samples}")
    components = group_components(model, group, int(n_samples))
    draw = prior_draw(model, int(n_samples), seed)
    same = [c] * int(n_samples)
    hearts = drawn_hearts(model, draw, same, components)
    labels, latents = decode_from_z(
        model, hearts.z0, same, motion_noise=draw.motion, motion_codes=hearts.motion_codes
    )
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
        picked = None if components is None else components.repeat(len(swept))
        hearts = drawn_hearts(model, repeated, swept, picked)
        z0, codes = hearts.z0, hearts.motion_codes
    else:
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        if z.shape[0] != model.config.z_dim:
            raise CardioInputError("z", f"expected {model.config.z_dim} values, got {z.shape[0]}")
        z0 = np.repeat(z[None], len(swept), axis=0)
        motion = codes = None
    labels, latents = decode_from_z(model, z0, swept, motion_noise=motion, motion_codes=codes)
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
            same = [c] * len(draw)
            hearts = drawn_hearts(model, draw, same, components)
            labels, _ = decode_from_z(
                model, hearts.z0, same, motion_noise=draw.motion, motion_codes=hearts.motion_codes
            )
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
