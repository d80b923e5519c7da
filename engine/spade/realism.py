"""Contrast of SPADE's images against real MR images of the same hearts (``--real``).

For every real labelled frame with an image: synthesise an image from its labels and compare
two tissue contrasts with the real image's: LV blood / myocardium and myocardium / background
(mean intensities on the [0, 1] scale ``(x + 1) / 2`` of the [-1, 1] images, pooled over all
volumes). Bright blood and dark myocardium is what makes a cine bSSFP image look like one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.spade.inference import StyleSpec, synthesise_images
from cardio_explorer.engine.spade.network import SpadeModel
from cardio_explorer.engine.subject import Subject

CONTRAST_MAX_RELATIVE_ERROR = 0.15
RATIOS = {"blood_myo": (Label.LV, Label.MYO), "myo_background": (Label.MYO, Label.BACKGROUND)}


def _tissue_sums(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    x = (image.astype(np.float64).ravel() + 1.0) / 2.0
    lab = labels.ravel()
    return np.stack(
        [np.bincount(lab, weights=x, minlength=4)[:4], np.bincount(lab, minlength=4)[:4]]
    )


def _ratios(sums: np.ndarray) -> dict[str, float | None]:
    means = np.divide(sums[0], sums[1], out=np.full(4, np.nan), where=sums[1] > 0)
    out: dict[str, float | None] = {}
    for name, (num, den) in RATIOS.items():
        ok = np.isfinite(means[num]) and np.isfinite(means[den]) and means[den] > 0
        out[name] = round(float(means[num] / means[den]), 4) if ok else None
    return out


def evaluate_contrast(
    model: SpadeModel, subjects: Sequence[Subject], style: str = "reference", seed: int = 0
) -> dict[str, Any]:
    """``real`` section of a SPADE report: contrast ratios real vs synthetic, and targets.

    Subjects must be preprocessed to the model's image grid and hold images of their labelled
    frames. style "reference" takes each frame's style from its own real image, "random" draws
    one per frame from the prior (seeded).
    """
    real, synthetic = np.zeros((2, 4)), np.zeros((2, 4))
    n = 0
    for i, subject in enumerate(subjects):
        for frame, labels in sorted(subject.labels.items()):
            image = subject.images.get(frame)
            if image is None or not labels.data.any():
                continue
            spec = StyleSpec(reference=image) if style == "reference" else StyleSpec(seed=seed + i)
            fake = synthesise_images(model, labels, spec)
            real += _tissue_sums(image.data, labels.data)
            synthetic += _tissue_sums(fake.data, labels.data)
            n += 1
    if n == 0:
        raise CardioInputError("--real", "no labelled frame with an image to compare")
    contrast: dict[str, Any] = {"real": _ratios(real), "synthetic": _ratios(synthetic)}
    errors = {}
    targets = {}
    for name in RATIOS:
        r, s = contrast["real"][name], contrast["synthetic"][name]
        error = None if r is None or s is None or r == 0 else round(abs(s - r) / abs(r), 4)
        errors[name] = error
        targets[f"real_contrast_{name}"] = {
            "value": error,
            "threshold": f"relative error <= {CONTRAST_MAX_RELATIVE_ERROR}",
            "pass": error is not None and error <= CONTRAST_MAX_RELATIVE_ERROR,
        }
    contrast["relative_error"] = errors
    return {
        "n_subjects": len(subjects),
        "n_volumes": n,
        "style": style,
        "contrast": contrast,
        "targets": targets,
    }
