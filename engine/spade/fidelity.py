"""Label fidelity of synthesised images, judged by a segmenter trained on real images.

1. Train a small U-Net on the real image/label slices of the segmenter's subjects.
2. For every labelled frame of the held-out subjects: synthesise an image from its labels,
   segment it, and score Dice against the labels it was made from (label fidelity); segment the
   real image of the same frame and score it the same way (the segmenter's own ceiling).
3. Per tissue, intensity mean and std of synthetic vs real images over the same voxels.

Intensities are compared on the [0, 1] scale ``(x + 1) / 2`` of the [-1, 1] images, so that "within
10 % of real" is relative to a positive number rather than to a value near 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import LABEL_TABLE, STRUCTURES
from cardio_explorer.engine.metrics.overlap import dice_per_structure
from cardio_explorer.engine.nn.training import progress_bar
from cardio_explorer.engine.spade.data import collect_image_label_slices
from cardio_explorer.engine.spade.inference import StyleSpec, synthesise_images
from cardio_explorer.engine.spade.network import SpadeModel
from cardio_explorer.engine.spade.segmenter import (
    SegmenterSettings,
    segment_slices,
    train_segmenter,
)
from cardio_explorer.engine.subject import Subject

TISSUES = tuple(LABEL_TABLE.name(v) for v in LABEL_TABLE.values)  # background, lv, myo, rv
FIDELITY_MIN_DICE = 0.85
FIDELITY_MAX_GAP = 0.05
INTENSITY_MAX_RELATIVE_ERROR = 0.10
STYLES = ("reference", "random")


@dataclass(frozen=True)
class FidelitySettings:
    """How synthetic images are styled and how the judge segmenter is trained.

    style: "reference" encodes each held-out frame's own real image (appearance matched, so
    intensities compare like with like); "random" draws a style from the prior per frame.
    """

    style: str = "reference"
    seed: int = 0
    batch_size: int = 32
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise CardioInputError("--style", f"must be one of {STYLES}, got {self.style!r}")


class _Moments:
    """Running count, sum and sum of squares per label value."""

    def __init__(self) -> None:
        self.n = np.zeros(len(TISSUES))
        self.s = np.zeros(len(TISSUES))
        self.ss = np.zeros(len(TISSUES))

    def add(self, image: np.ndarray, labels: np.ndarray) -> None:
        x = (image.astype(np.float64).ravel() + 1.0) / 2.0
        lab = labels.ravel()
        k = len(TISSUES)
        self.n += np.bincount(lab, minlength=k)[:k]
        self.s += np.bincount(lab, weights=x, minlength=k)[:k]
        self.ss += np.bincount(lab, weights=x * x, minlength=k)[:k]

    def stats(self, i: int) -> dict[str, float | None]:
        if self.n[i] == 0:
            return {"mean": None, "std": None}
        mean = self.s[i] / self.n[i]
        var = max(self.ss[i] / self.n[i] - mean * mean, 0.0)
        return {"mean": round(float(mean), 5), "std": round(float(np.sqrt(var)), 5)}


def _mean_dice(scores: list[dict[str, float]]) -> dict[str, float]:
    keys = (*STRUCTURES, "mean")
    return {k: round(float(np.mean([s[k] for s in scores])), 4) for k in keys}


@dataclass
class FidelityReport:
    """Everything the check measured; ``to_json()`` is the report's JSON body."""

    label_fidelity_dice: dict[str, float]
    real_image_dice: dict[str, float]
    intensity: dict[str, dict[str, Any]]
    targets: dict[str, dict[str, Any]]
    passed: bool
    counts: dict[str, int]
    segmenter: dict[str, Any]
    settings: dict[str, Any]
    per_volume: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain dict (JSON-able)."""
        return asdict(self)


def evaluate_fidelity(
    model: SpadeModel,
    segmenter_subjects: Sequence[Subject],
    test_subjects: Sequence[Subject],
    settings: FidelitySettings,
    device: torch.device,
    progress: bool = False,
) -> FidelityReport:
    """Label fidelity, real-image Dice and per-tissue intensities on held-out subjects.

    Subjects must be preprocessed to the model's image size and hold images. The model must be
    inference-ready (``load_spade``).
    """
    if not test_subjects:
        raise CardioInputError("evaluation", "no held-out subjects to evaluate on")
    size = model.config.image_size
    seg_slices = collect_image_label_slices(segmenter_subjects, size)
    fit = train_segmenter(seg_slices, settings.segmenter, device, model.config.n_labels, progress)
    test_slices = collect_image_label_slices(test_subjects, size)  # checks sizes and images
    real_m, synth_m = _Moments(), _Moments()
    fidelity, real_scores, per_volume = [], [], []
    skipped = 0
    volumes = [(s, t) for s in test_subjects for t in sorted(set(s.labels) & set(s.images))]
    bar = progress_bar(len(volumes), "fidelity", progress, unit="volume")
    for k, (subject, frame) in enumerate(volumes):
        labels, real = subject.labels[frame], subject.images[frame]
        bar.update(1)
        if not labels.data.any():
            skipped += 1
            continue
        style = (
            StyleSpec(reference=real)
            if settings.style == "reference"
            else StyleSpec(seed=settings.seed + k)
        )
        synth = synthesise_images(model, labels, style, device, settings.batch_size)
        seg_synth = segment_slices(fit.model, synth.data, device, settings.batch_size)
        seg_real = segment_slices(fit.model, real.data, device, settings.batch_size)
        d_synth = dice_per_structure(labels.with_data(seg_synth), labels)
        d_real = dice_per_structure(labels.with_data(seg_real), labels)
        fidelity.append(d_synth)
        real_scores.append(d_real)
        per_volume.append(
            {
                "subject": subject.subject_id,
                "frame": frame,
                "fidelity_mean": round(d_synth["mean"], 4),
                "real_mean": round(d_real["mean"], 4),
            }
        )
        real_m.add(real.data, labels.data)
        synth_m.add(synth.data, labels.data)
    bar.close()
    if not fidelity:
        raise CardioInputError("evaluation", "every held-out frame has empty labels")
    fid, real_d = _mean_dice(fidelity), _mean_dice(real_scores)
    intensity: dict[str, dict[str, Any]] = {}
    for i, tissue in enumerate(TISSUES):
        r, s = real_m.stats(i), synth_m.stats(i)
        rel = None
        if r["mean"] and s["mean"] is not None:
            rel = round(abs(s["mean"] - r["mean"]) / abs(r["mean"]), 4)
        intensity[tissue] = {"real": r, "synthetic": s, "relative_mean_error": rel}
    targets = _targets(fid, real_d, intensity)
    return FidelityReport(
        label_fidelity_dice=fid,
        real_image_dice=real_d,
        intensity=intensity,
        targets=targets,
        passed=all(t["pass"] for t in targets.values()),
        counts={
            "segmenter_subjects": len(segmenter_subjects),
            "segmenter_slices": len(seg_slices),
            "test_subjects": len(test_subjects),
            "test_volumes": len(fidelity),
            "test_slices": len(test_slices),
            "skipped_empty_volumes": skipped,
        },
        segmenter={
            "steps": settings.segmenter.steps,
            "batch_size": settings.segmenter.batch_size,
            "final_loss": round(fit.losses[-1], 4),
            "architecture": f"TinyUNet(base={settings.segmenter.base}, depth=3)",
        },
        settings={"style": settings.style, "seed": settings.seed, "intensity_scale": "(x + 1) / 2"},
        per_volume=per_volume,
    )


def _targets(
    fid: dict[str, float], real: dict[str, float], intensity: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The issue's pass/fail targets (intensity over the heart's tissues, not background)."""
    gap = round(abs(real["mean"] - fid["mean"]), 4)
    targets: dict[str, dict[str, Any]] = {
        "label_fidelity_mean_dice": {
            "value": fid["mean"],
            "threshold": f">= {FIDELITY_MIN_DICE}",
            "pass": fid["mean"] >= FIDELITY_MIN_DICE,
        },
        "fidelity_gap_to_real_dice": {
            "value": gap,
            "threshold": f"<= {FIDELITY_MAX_GAP}",
            "pass": gap <= FIDELITY_MAX_GAP,
        },
    }
    for tissue in STRUCTURES:
        rel = intensity[tissue]["relative_mean_error"]
        targets[f"intensity_mean_{tissue}"] = {
            "value": rel,
            "threshold": f"<= {INTENSITY_MAX_RELATIVE_ERROR}",
            "pass": rel is not None and rel <= INTENSITY_MAX_RELATIVE_ERROR,
        }
    return targets
