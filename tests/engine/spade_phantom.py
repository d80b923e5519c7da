"""Tiny image/label phantoms and a tiny SPADE config for the SPADE tests (seeded, 32 x 32)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tiny_models import TINY_SPADE

from cardio_explorer.engine.spade.config import SpadeConfig
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

TINY = TINY_SPADE

# tissue intensities in [-1, 1]: background, LV blood, myocardium, RV blood
INTENSITY = np.array([-0.7, 0.6, -0.2, 0.5], dtype=np.float32)


def phantom_labels(
    rng: np.random.Generator, size: int = 32, slices: int = 4, scale: float = 1.0
) -> np.ndarray:
    """(slices, size, size) uint8: LV disc, myocardial ring and RV crescent, shrinking to apex."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    cy = size / 2 + rng.uniform(-2, 2)
    cx = size / 2 - 2 + rng.uniform(-2, 2)
    out = np.zeros((slices, size, size), dtype=np.uint8)
    for k in range(slices):
        r = scale * size * (0.16 - 0.02 * k) * rng.uniform(0.9, 1.1)
        d = np.hypot(yy - cy, xx - cx)
        out[k][np.hypot(yy - cy, xx - cx - 1.6 * r) < 1.4 * r] = 3
        out[k][d < r + 0.09 * size] = 2
        out[k][d < r] = 1
    return out


def phantom_image(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tissue intensities + smooth bias + noise, in [-1, 1]."""
    image = INTENSITY[labels] + rng.normal(0.0, 0.04, labels.shape).astype(np.float32)
    ramp = np.linspace(-0.05, 0.05, labels.shape[-1], dtype=np.float32)
    return np.clip(image + ramp, -1.0, 1.0).astype(np.float32)


def phantom_subject(subject_id: str, rng: np.random.Generator, size: int = 32) -> Subject:
    """A preprocessed-looking subject: ED (frame 0) and ES (frame 5) labels and images."""
    labels, images = {}, {}
    for frame, scale in ((0, 1.0), (5, 0.75)):
        lab = phantom_labels(rng, size, scale=scale)
        labels[frame] = LabelVolume.from_array(lab, (8.0, 1.5, 1.5))
        images[frame] = ImageVolume.from_array(phantom_image(lab, rng), (8.0, 1.5, 1.5))
    return Subject(
        subject_id, group="NOR", ed_frame=0, es_frame=5, n_frames=10, labels=labels, images=images
    )


def phantom_subjects(n: int, seed: int = 0, size: int = 32) -> list[Subject]:
    """n seeded phantom subjects."""
    rng = np.random.default_rng(seed)
    return [phantom_subject(f"p{i:03d}", rng, size) for i in range(n)]


def tiny_config(**changes: object) -> SpadeConfig:
    """TINY with changes."""
    return replace(TINY, **changes)
