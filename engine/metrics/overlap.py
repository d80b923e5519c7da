"""Dice overlap per cardiac structure, for label volumes and for batches of label arrays.

Plain NumPy rather than ``monai.metrics.DiceMetric``: MONAI wants one-hot torch tensors with
batch and channel axes and returns NaN (or 0) when both sides are empty, whereas label maps
here are integer arrays and "both empty" means perfect agreement (1.0). Three bincounts give
every label's overlap in one pass, which is also faster than one-hot encoding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import STRUCTURES
from cardio_explorer.engine.volume import LabelVolume


def _as_label_array(x: object, what: str) -> np.ndarray:
    arr = np.asarray(x)
    integral = np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_
    whole_floats = np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))
    if not (integral or whole_floats):
        raise CardioInputError(what, f"expected integer labels, got {arr.dtype} values")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise CardioInputError(what, "labels must be non-negative")
    return arr


def _dice_from_counts(inter: np.ndarray, size_pred: np.ndarray, size_ref: np.ndarray) -> np.ndarray:
    total = size_pred + size_ref
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(total > 0, 2.0 * inter / total, 1.0)
    return dice.astype(np.float64)


def dice_scores(
    pred: np.ndarray,
    ref: np.ndarray,
    labels: Sequence[int] = (1, 2, 3),
    *,
    per_sample: bool = False,
) -> np.ndarray:
    """Dice of each label between two integer label arrays of the same shape (any ndim).

    Returns shape (len(labels),) pooled over the whole array, or (N, len(labels)) with
    ``per_sample=True`` where axis 0 indexes samples (e.g. a batch of 2D slices N x H x W).
    A label absent from both sides scores 1.0. Torch CPU tensors work (``np.asarray``).
    """
    p = _as_label_array(pred, "prediction")
    r = _as_label_array(ref, "reference")
    if p.shape != r.shape:
        raise CardioInputError("dice", f"shapes differ: prediction {p.shape}, reference {r.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    n_values = int(max(p.max(initial=0), r.max(initial=0), labels.max(initial=0))) + 1
    if per_sample:
        if p.ndim < 2:
            raise CardioInputError("dice", "per_sample needs a batch axis 0 and sample axes")
        n_samples = p.shape[0]
        # Offset values by sample so one bincount counts every (sample, label) pair.
        offset = np.arange(n_samples, dtype=np.int64).reshape(-1, *([1] * (p.ndim - 1)))
        p, r = p + offset * n_values, r + offset * n_values
    else:
        n_samples = 1
    length = n_samples * n_values
    size_p = np.bincount(p.ravel(), minlength=length).reshape(n_samples, n_values)
    size_r = np.bincount(r.ravel(), minlength=length).reshape(n_samples, n_values)
    both = p[p == r]
    inter = np.bincount(both, minlength=length).reshape(n_samples, n_values)
    dice = _dice_from_counts(inter[:, labels], size_p[:, labels], size_r[:, labels])
    return dice if per_sample else dice[0]


def dice_per_structure(pred: LabelVolume, ref: LabelVolume) -> dict[str, float]:
    """Dice of LV, MYO and RV between two label volumes on the same grid, plus their mean."""
    if not pred.same_grid(ref) or pred.data.shape != ref.data.shape:
        raise CardioInputError(
            pred.name or "prediction",
            f"grid differs from the reference: shape {pred.data.shape} vs {ref.data.shape}, "
            f"spacing {pred.spacing_zyx} vs {ref.spacing_zyx}; resample one onto the other",
        )
    scores = dice_scores(pred.data, ref.data, labels=tuple(STRUCTURES.values()))
    result = {name: float(s) for name, s in zip(STRUCTURES, scores, strict=True)}
    result["mean"] = float(np.mean(scores))
    return result
