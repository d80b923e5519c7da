"""2D short-axis label slices of a cohort, preloaded in memory, and subject-level splits.

Subjects must be preprocessed first (engine/preprocess.py ``preprocess_subject``: canonical
orientation, ~1.5 mm in-plane, size x size crop around the heart). Slices are kept as uint8
label maps [N, size, size] (16 KiB each at 128 x 128) and one-hot encoded per batch on the fly.
Augmentation is a random in-plane rotation and shift; random mirrors in x and y (``flip``) are
off by default, as in the anatomical frame a mirror puts the RV on a side that never occurs
there. They serve models trained in the header frame, where both handednesses occur.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import PHASES, Subject


class SliceArrays:
    """``len()`` and in-plane ``size`` of a dataclass of slices with ``labels`` [N, H, W]."""

    labels: np.ndarray

    def __len__(self) -> int:
        """Number of slices."""
        return len(self.labels)

    @property
    def size(self) -> tuple[int, int]:
        """In-plane (H, W) of every slice."""
        return tuple(self.labels.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class LabelSlices(SliceArrays):
    """Label slices and where each came from.

    labels: uint8 [N, H, W]; subject_index: int32 [N] into ``subject_ids``; phase_index: uint8
    [N] into PHASES; slice_index: int32 [N], the slice's z index in its stack.
    """

    labels: np.ndarray
    subject_ids: tuple[str, ...]
    subject_index: np.ndarray
    phase_index: np.ndarray
    slice_index: np.ndarray

    def stacks(self) -> Iterator[tuple[str, str, np.ndarray]]:
        """(subject_id, phase, indices of its slices in z order) for every stack present."""
        key = self.subject_index.astype(np.int64) * len(PHASES) + self.phase_index
        order = np.lexsort((self.slice_index, key))
        boundaries = np.flatnonzero(np.diff(key[order])) + 1
        for group in np.split(order, boundaries):
            if len(group):
                first = group[0]
                yield (
                    self.subject_ids[self.subject_index[first]],
                    PHASES[self.phase_index[first]],
                    group,
                )


def collect_label_slices(
    subjects: Sequence[Subject], phases: Sequence[str] = PHASES, size: int | None = None
) -> LabelSlices:
    """Every slice of every subject's ED and ES label stacks (all slices, empty ones included).

    ``size``: required in-plane size (clear error naming the subject otherwise); None accepts
    any size shared by all subjects. A subject without an ES frame contributes ED only.
    """
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise CardioInputError("phases", f"unknown phases {sorted(unknown)}; expected {PHASES}")
    if not subjects:
        raise CardioInputError("cohort", "no subjects to take slices from")
    arrays, subject_index, phase_index, slice_index = [], [], [], []
    expected = (size, size) if size is not None else None
    for s, subject in enumerate(subjects):
        for phase in phases:
            frame = subject.ed_frame if phase == "ED" else subject.es_frame
            if frame is None or frame not in subject.labels:
                continue
            volume = subject.labels[frame]
            if volume.is_4d:
                raise CardioInputError(subject.subject_id, f"{phase} labels are 3D+t, expected 3D")
            plane = tuple(volume.data.shape[1:])
            expected = expected or plane
            if plane != expected:
                raise CardioInputError(
                    subject.subject_id,
                    f"{phase} slices are {plane[0]} x {plane[1]}, expected "
                    f"{expected[0]} x {expected[1]}: preprocess the subject first "
                    "(engine.preprocess.preprocess_subject)",
                )
            n = volume.data.shape[0]
            arrays.append(volume.data)
            subject_index.append(np.full(n, s, dtype=np.int32))
            phase_index.append(np.full(n, PHASES.index(phase), dtype=np.uint8))
            slice_index.append(np.arange(n, dtype=np.int32))
    if not arrays:
        raise CardioInputError("cohort", f"no labelled {'/'.join(phases)} frames in any subject")
    return LabelSlices(
        labels=np.ascontiguousarray(np.concatenate(arrays), dtype=np.uint8),
        subject_ids=tuple(s.subject_id for s in subjects),
        subject_index=np.concatenate(subject_index),
        phase_index=np.concatenate(phase_index),
        slice_index=np.concatenate(slice_index),
    )


class SubjectSplit(NamedTuple):
    """Training and validation subjects (no subject in both)."""

    train: list[Subject]
    val: list[Subject]


def _rank(subject_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{subject_id}".encode()).hexdigest()


def split_subjects(
    subjects: Sequence[Subject], val_fraction: float = 0.1, seed: int = 1220
) -> SubjectSplit:
    """Split by subject id, stratified by group, deterministic in (ids, seed).

    Each subject's rank is a hash of (seed, id), so the split does not depend on input order
    and adding subjects moves few others. Every group gets its share (largest remainder) and at
    least one validation subject is taken when val_fraction > 0 and there are 2+ subjects.
    """
    if not 0.0 <= val_fraction < 1.0 or math.isnan(val_fraction):
        raise CardioInputError("--val-fraction", f"must be in [0, 1), got {val_fraction}")
    ids = [s.subject_id for s in subjects]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise CardioInputError("cohort", f"duplicate subject ids {duplicates[:5]}")
    groups: dict[str, list[Subject]] = {}
    for subject in subjects:
        groups.setdefault(subject.group or "", []).append(subject)
    n_val = round(val_fraction * len(subjects))
    if val_fraction > 0 and len(subjects) >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, len(subjects) - 1) if subjects else 0
    # Largest-remainder allocation of n_val over groups, ties broken by group name.
    shares = {g: val_fraction * len(members) for g, members in groups.items()}
    quota = {g: math.floor(v) for g, v in shares.items()}
    leftover = n_val - sum(quota.values())
    for g in sorted(groups, key=lambda g: (-(shares[g] - quota[g]), -len(groups[g]), g)):
        if leftover <= 0:
            break
        if quota[g] < len(groups[g]):
            quota[g] += 1
            leftover -= 1
    val_ids: set[str] = set()
    for g, members in groups.items():
        ranked = sorted(members, key=lambda s: _rank(s.subject_id, seed))
        val_ids.update(s.subject_id for s in ranked[: min(quota[g], len(members))])
    train = [s for s in subjects if s.subject_id not in val_ids]
    val = [s for s in subjects if s.subject_id in val_ids]
    return SubjectSplit(train, val)


def augment_labels(
    labels: torch.Tensor,
    generator: torch.Generator,
    max_rotation_deg: float = 10.0,
    max_shift_px: float = 4.0,
    flip: bool = False,
) -> torch.Tensor:
    """Random rotation about the centre and shift of each slice; with ``flip``, each slice is
    first mirrored in x and, independently, in y, each with probability 1/2.

    labels: integer [B, H, W] on any device; returns the same dtype and shape (nearest-neighbour
    resampling, background where the slice moved out of view). Random numbers come from
    ``generator`` (a CPU generator), so a run is reproducible from its seed; without ``flip``
    the draws are those of earlier versions.
    """
    if flip:
        labels = _random_flips(labels, generator)
    if max_rotation_deg <= 0 and max_shift_px <= 0:
        return labels
    batch, height, width = labels.shape
    angle = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(max_rotation_deg)
    shift = (torch.rand(batch, 2, generator=generator) * 2 - 1) * max_shift_px
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(batch, 2, 3)
    # affine_grid works in normalised [-1, 1] coordinates, one unit = half the image.
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * height / width
    theta[:, 1, 0], theta[:, 1, 1] = sin * width / height, cos
    theta[:, 0, 2] = shift[:, 0] * 2 / width
    theta[:, 1, 2] = shift[:, 1] * 2 / height
    theta = theta.to(labels.device)
    grid = functional.affine_grid(theta, [batch, 1, height, width], align_corners=False)
    moved = functional.grid_sample(
        labels[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return moved[:, 0].round().to(labels.dtype)


def _random_flips(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each slice of [B, H, W] mirrored in x and in y, each with probability 1/2."""
    flips = (torch.rand(labels.shape[0], 2, generator=generator) < 0.5).to(labels.device)
    labels = torch.where(flips[:, 0, None, None], labels.flip(-1), labels)
    return torch.where(flips[:, 1, None, None], labels.flip(-2), labels)
