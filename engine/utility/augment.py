"""Arm (b): classic augmentation of the scarce real slices (random affine + elastic, MONAI).

MONAI's ``Rand2DElasticd`` draws one affine (rotation, scaling, translation) and one smooth
displacement field per sample and resamples the image (bilinear) and the labels (nearest)
through the same grid, so labels stay aligned with their image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.training import progress_bar
from cardio_explorer.engine.spade.data import ImageLabelSlices


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random affine and the elastic field (in pixels of the slice grid)."""

    rotate_deg: float = 15.0
    scale: float = 0.15
    translate_px: float = 8.0
    elastic_spacing_px: int = 16
    elastic_magnitude: tuple[float, float] = (1.0, 3.0)

    def to_json(self) -> dict[str, object]:
        """JSON-able summary (with the library that applies it)."""
        return {
            "library": "monai.transforms.Rand2DElasticd",
            "rotate_deg": self.rotate_deg,
            "scale": self.scale,
            "translate_px": self.translate_px,
            "elastic_spacing_px": self.elastic_spacing_px,
            "elastic_magnitude": list(self.elastic_magnitude),
        }


def augment_slices(
    slices: ImageLabelSlices,
    n: int,
    settings: AugmentSettings,
    seed: int,
    progress: bool = False,
) -> ImageLabelSlices:
    """``n`` augmented copies of slices drawn uniformly (seeded) from ``slices``."""
    from monai.transforms import Rand2DElasticd  # imported here: only this arm needs MONAI

    if n < 1 or len(slices) < 1:
        raise CardioInputError("augmentation", f"needs slices and n >= 1 (n = {n})")
    size = slices.size
    transform = Rand2DElasticd(
        keys=("image", "label"),
        spacing=(settings.elastic_spacing_px, settings.elastic_spacing_px),
        magnitude_range=settings.elastic_magnitude,
        prob=1.0,
        rotate_range=math.radians(settings.rotate_deg),
        scale_range=(settings.scale, settings.scale),
        translate_range=(settings.translate_px, settings.translate_px),
        spatial_size=size,
        mode=("bilinear", "nearest"),
        padding_mode="border",
    )
    transform.set_random_state(seed=seed)
    pick = np.random.default_rng(seed).integers(0, len(slices), n)
    labels = np.empty((n, *size), dtype=np.uint8)
    images = np.empty((n, *size), dtype=np.float32)
    bar = progress_bar(n, "augmentation", progress, unit="slice")
    for k, i in enumerate(pick):
        out = transform(
            {
                "image": slices.images[i][None].astype(np.float32),
                "label": slices.labels[i][None].astype(np.float32),
            }
        )
        images[k] = np.clip(np.asarray(out["image"])[0], -1.0, 1.0)
        labels[k] = np.rint(np.asarray(out["label"])[0]).astype(np.uint8)
        bar.update(1)
    bar.close()
    return ImageLabelSlices(
        labels=labels,
        images=images,
        subject_ids=slices.subject_ids,
        subject_index=slices.subject_index[pick],
        frame_index=slices.frame_index[pick],
        slice_index=slices.slice_index[pick],
    )
