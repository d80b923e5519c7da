"""Train the segmenter of each arm (same steps, same batch) and score it per real 3D volume.

Arms: (a) the scarce real slices alone; (b) real + classic augmentation; (c) real + synthetic
cases; on request (d) real + both, the augmented and the synthetic slices in equal numbers. In
(b), (c) and (d) the real slices are repeated so that about half of every batch is real,
whatever the number of extra slices, so the arms differ only in what the other half holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.metrics.overlap import dice_per_structure
from cardio_explorer.engine.spade.data import ImageLabelSlices
from cardio_explorer.engine.spade.segmenter import SegmenterSettings, TinyUNet, train_segmenter
from cardio_explorer.engine.utility.data import TestSet, group_of, join_slices

ARMS = ("a", "b", "c")
COMBINED_ARM = "d"  # does synthetic pathology add anything to classic augmentation?
ARM_NAMES = {
    "a": "scarce real",
    "b": "scarce real + affine/elastic augmentation",
    "c": "scarce real + synthetic pathology (label VAE morphs + SPADE images)",
    "d": "scarce real + augmentation + synthetic pathology (a quarter of each batch each)",
}


def arm_slices(real: ImageLabelSlices, extra: ImageLabelSlices | None) -> ImageLabelSlices:
    """Real slices alone, or real (repeated to about half) + extra."""
    if extra is None:
        return real
    repeats = max(1, round(len(extra) / max(len(real), 1)))
    return join_slices([real, extra], [repeats, 1])


@torch.inference_mode()
def predict_volume(
    model: TinyUNet, image: np.ndarray, seg_size: int, device: torch.device
) -> np.ndarray:
    """Labels (Z, H, W) of an image (Z, H, W) in [-1, 1]: segmented at seg_size, logits back
    at H x W (bilinear) before the argmax, so Dice is scored on the volume's own grid."""
    full = image.shape[-2:]
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[:, None].to(device)
    if tuple(full) != (seg_size, seg_size):
        x = functional.interpolate(x, (seg_size, seg_size), mode="bilinear", antialias=True)
    with autocast(device):
        logits = model(x)
    logits = logits.float()
    if tuple(full) != (seg_size, seg_size):
        logits = functional.interpolate(logits, tuple(full), mode="bilinear")
    return logits.argmax(dim=1).to(torch.uint8).cpu().numpy()


def score_test_set(
    model: TinyUNet, test: TestSet, seg_size: int, device: torch.device
) -> list[dict[str, Any]]:
    """One record per (subject, ED/ES) volume: Dice of LV, MYO, RV and their mean."""
    model.eval()
    records = []
    for subject in test.subjects:
        for phase, frame in (("ED", subject.ed_frame), ("ES", subject.es_frame)):
            if frame not in subject.labels or frame not in subject.images:
                continue
            truth = subject.labels[frame]
            if not truth.data.any():
                continue
            pred = predict_volume(model, subject.images[frame].data, seg_size, device)
            dice = dice_per_structure(truth.with_data(pred), truth)
            records.append(
                {
                    "subject": subject.subject_id,
                    "group": group_of(subject),
                    "phase": phase,
                    **{k: round(float(v), 5) for k, v in dice.items()},
                }
            )
    return records


def run_arm(
    arm: str,
    slices: ImageLabelSlices,
    tests: Sequence[TestSet],
    settings: SegmenterSettings,
    seg_size: int,
    device: torch.device,
    progress: bool = False,
) -> tuple[dict[str, list[dict[str, Any]]], float]:
    """Train one arm's segmenter (one seed); ({test name: volume records}, final loss)."""
    fit = train_segmenter(slices, settings, device, n_labels=4, progress=progress)
    scores = {t.name: score_test_set(fit.model, t, seg_size, device) for t in tests}
    return scores, fit.losses[-1]
