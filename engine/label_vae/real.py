"""Figures of a label VAE and its latent atlas on real hearts (``evaluate label-vae --real``).

Two figures per real ED/ES stack, after the subject went to the anatomical frame
(engine/frame.py via preprocess_subject): reconstruction Dice (encode each slice's posterior
mean, decode) and the distance of its 32 x nz codes to the atlas: the RMS over all elements of
z = (code - group mean) / group SD, to the nearest group at that phase. Cohort hearts lie at
about 0.7-0.8 from their own group; a real heart far off the map starts its morph off it too.

Only active latent dimensions count (Burda et al.'s active units: the posterior mean varies
over the data with variance > 0.01). A collapsed dimension is ignored by the decoder, and its
stored SD can be 0 (the atlas is saved rounded), which would turn noise into z of 1e5. Within
an active dimension, an element's SD is floored at a tenth of that dimension's overall SD:
where every atlas heart has the same slice (e.g. empty apical slices at ES) the group SD is 0,
and one real heart with tissue there would otherwise read as z of 1e2-1e5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cardio_explorer.engine.label_vae.atlas import LatentAtlas
from cardio_explorer.engine.label_vae.encoding import REFINE_STEPS, encode_stack, interpolate_codes
from cardio_explorer.engine.label_vae.morph import decode_codes
from cardio_explorer.engine.labels import STRUCTURES
from cardio_explorer.engine.metrics.overlap import dice_per_structure
from cardio_explorer.engine.subject import Subject

# Targets of issue 18 on the held-out ACDC split (M&Ms: mean 0.88, RV 0.80; see the README).
MIN_REAL_DICE_MEAN = 0.93
MIN_REAL_DICE_STRUCTURE = 0.88
MIN_REAL_DICE_VOLUME = 0.75
MAX_ATLAS_DISTANCE = 1.5
ACTIVE_VARIANCE = 0.01  # active unit: variance of the posterior mean over the data
SD_FLOOR = 0.1  # element SD >= this share of its dimension's overall SD


def dim_variance(atlas: LatentAtlas) -> np.ndarray:
    """(nz,) variance of each dimension's codes over the atlas subjects (all groups, slices)."""
    stats = list(atlas.stats.values())
    weights = np.array([s.n_subjects for s in stats], dtype=np.float64)
    means = np.stack([s.mean for s in stats])  # (groups x phases, slices, nz)
    within = np.stack([s.std**2 for s in stats])
    w = weights[:, None, None] / weights.sum()
    grand = (w * means).sum(axis=0)
    return (w * (within + (means - grand) ** 2)).sum(axis=0).mean(axis=0)


def active_dims(atlas: LatentAtlas) -> np.ndarray:
    """(nz,) bool: active dimensions (variance of the codes over the atlas > 0.01); all of
    them when none is (an untrained model), so the distance stays defined."""
    active = dim_variance(atlas) > ACTIVE_VARIANCE
    return active if active.any() else np.ones_like(active)


def atlas_distance(
    atlas: LatentAtlas, codes: np.ndarray, phase: str, active: np.ndarray | None = None
) -> tuple[float, str]:
    """RMS z of (32, nz) codes to the nearest group of the atlas at ``phase``, and that group.

    z per element over the active dimensions (default: :func:`active_dims`).
    """
    active = active_dims(atlas) if active is None else active
    # an inactive dimension may have no spread at all; it is left out below anyway
    floor = np.maximum(SD_FLOOR * np.sqrt(dim_variance(atlas)), 1e-12)
    best = (math.inf, "")
    for (group, p), stats in atlas.stats.items():
        if p != phase or stats.n_subjects < 2:
            continue
        z = (codes - stats.mean) / np.maximum(stats.std, floor)
        best = min(best, (float(np.sqrt(np.mean(z[:, active] ** 2))), group))
    return best


def evaluate_real(
    model: torch.nn.Module,
    atlas: LatentAtlas,
    subjects: Sequence[Subject],
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """``real`` section of a label VAE report for preprocessed real subjects (ED and ES)."""
    device = torch.device(device)
    scores: dict[str, list[float]] = {k: [] for k in (*STRUCTURES, "mean")}
    distances: list[float] = []
    nearest: dict[str, int] = {}
    volumes = []
    active = active_dims(atlas)
    for subject in subjects:
        for phase, frame in (("ED", subject.ed_frame), ("ES", subject.es_frame)):
            if frame is None or frame not in subject.labels:
                continue
            labels = subject.labels[frame]
            mu = encode_stack(model, labels, device, REFINE_STEPS)
            decoded = decode_codes(model, mu, device)
            dice = dice_per_structure(labels.with_data(decoded), labels)
            for key in scores:
                scores[key].append(dice[key])
            distance, group = atlas_distance(
                atlas, interpolate_codes(mu, atlas.n_slices).codes, phase
            )
            if math.isfinite(distance):
                distances.append(distance)
                nearest[group] = nearest.get(group, 0) + 1
            volumes.append(
                {
                    "subject": subject.subject_id,
                    "group": subject.group,
                    "phase": phase,
                    "dice_mean": dice["mean"],
                    "dice_rv": dice["rv"],
                    "atlas_distance": distance if math.isfinite(distance) else None,
                    "nearest_group": group or None,
                }
            )
    recon: dict[str, Any] = {k: _mean(v) for k, v in scores.items()}
    recon["n_volumes"] = len(scores["mean"])
    recon["min_volume"] = min(scores["mean"]) if scores["mean"] else None
    real = {
        "n_subjects": len(subjects),
        "recon_dice": recon,
        "atlas_distance": {
            "mean": _mean(distances),
            "max": max(distances) if distances else None,
            "active_dims": int(active.sum()),
            "nearest_group_counts": nearest,
        },
        "volumes": volumes,
    }
    real["targets"] = real_targets(real)
    return real


def real_targets(real: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Pass/fail of the real-heart targets, keyed ``real_...``, with value and threshold."""
    recon = real["recon_dice"]
    checks = [
        ("real_recon_dice_mean", recon["mean"], ">=", MIN_REAL_DICE_MEAN),
        *((f"real_recon_dice_{s}", recon[s], ">=", MIN_REAL_DICE_STRUCTURE) for s in STRUCTURES),
        ("real_recon_dice_min_volume", recon["min_volume"], ">=", MIN_REAL_DICE_VOLUME),
        ("real_atlas_distance_mean", real["atlas_distance"]["mean"], "<=", MAX_ATLAS_DISTANCE),
    ]
    targets = {}
    for name, value, op, bound in checks:
        ok = value is not None and math.isfinite(value)
        ok = ok and (value >= bound if op == ">=" else value <= bound)
        targets[name] = {"value": value, "threshold": f"{op} {bound}", "pass": bool(ok)}
    return targets


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None
