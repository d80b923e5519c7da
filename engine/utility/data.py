"""The real subjects of a utility evaluation: the scarce training set and the test sets.

The scarce set is drawn from the training part of a split (ids sorted within each group, the
first ``n`` taken), so it is the same on every machine; test subjects from the same folder are
the split's held-out part only, and a test set from another folder is taken whole (subjects with
images only). Every subject is preprocessed onto one grid (``size`` x ``size`` at ``spacing_mm``,
crop centred on the heart), the grid the label VAE and SPADE work on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.cohort import read_cohort
from cardio_explorer.engine.io.split import read_split
from cardio_explorer.engine.spade.data import ImageLabelSlices, prepare_subjects
from cardio_explorer.engine.subject import GROUPS, Subject

REFERENCE_GROUP = "NOR"
UNKNOWN_GROUP = "unknown"


@dataclass(frozen=True)
class TestSet:
    """A named set of preprocessed real test subjects (each reported on its own)."""

    name: str
    folder: str
    subjects: list[Subject]
    skipped_without_images: list[str]


def subjects_with_images(folder: Path, ids: Sequence[str] | None = None) -> tuple[list, list]:
    """(subjects with ED/ES images, ids of those without); ``ids`` None: every subject."""
    listed = ids or [s.subject_id for s in read_cohort(folder, frames="ed_es")]
    subjects, skipped = [], []
    for sid in listed:
        try:
            found = read_cohort(folder, frames="ed_es", images=True, subject_ids=[sid])
        except CardioInputError:
            skipped.append(sid)  # labels only (e.g. one of the M&Ms sample's subjects)
            continue
        subjects += [s for s in found if s.images]
    return subjects, skipped


def choose_scarce(subjects: Sequence[Subject], n_nor: int, n_per_pathology: int) -> list[Subject]:
    """The first ``n_nor`` NOR and ``n_per_pathology`` of each other group (ids sorted)."""
    chosen: list[Subject] = []
    for group in GROUPS:
        members = sorted((s for s in subjects if s.group == group), key=lambda s: s.subject_id)
        want = n_nor if group == REFERENCE_GROUP else n_per_pathology
        if len(members) < want:
            raise CardioInputError(
                "--data",
                f"needs {want} {group} subjects with images for the scarce set, has {len(members)}",
            )
        chosen += members[:want]
    return chosen


def read_scarce(
    data: Path, split: Path | None, n_nor: int, n_per_pathology: int
) -> tuple[list[Subject], list[str]]:
    """(scarce subjects, held-out ids of the split or [] without one), unprocessed."""
    train_ids = read_split(split, "train") if split is not None else None
    held = read_split(split, "held_out") if split is not None else []
    if train_ids is not None:
        known = {s.subject_id for s in read_cohort(data, frames="ed_es")}
        train_ids = [i for i in train_ids if i in known]
        if not train_ids:
            raise CardioInputError(split, f"names no subject of {data}")
    subjects, _ = subjects_with_images(data, train_ids)
    return choose_scarce(subjects, n_nor, n_per_pathology), held


def read_test_set(
    folder: Path, data: Path, held_out: Sequence[str], scarce_ids: set[str]
) -> TestSet:
    """A test folder's subjects with images; the split's held-out ones when it is ``data``."""
    same = folder.resolve() == data.resolve()
    if same and not held_out:
        raise CardioInputError(
            "--test", f"{folder} is the --data folder; give --split so its held-out part is tested"
        )
    known = {s.subject_id for s in read_cohort(folder, frames="ed_es")}
    ids = [i for i in held_out if i in known] if same else None
    subjects, skipped = subjects_with_images(folder, ids)
    if same:
        leaked = sorted(scarce_ids & {s.subject_id for s in subjects})
        if leaked:
            raise CardioInputError("--test", f"test subjects also in training: {leaked[:5]}")
    if not subjects:
        raise CardioInputError(folder, "holds no subject with labels and images to test on")
    name = f"{folder.name}-held-out" if same else folder.name
    return TestSet(name, str(folder), subjects, skipped)


def preprocess_all(subjects: Sequence[Subject], size: int, spacing_mm: float) -> list[Subject]:
    """Every subject on the shared grid (images normalised to [-1, 1])."""
    return prepare_subjects(subjects, size, spacing_mm)


def group_of(subject: Subject) -> str:
    """The subject's group, or 'unknown' (e.g. M&Ms without its info table)."""
    return subject.group if subject.group in GROUPS else UNKNOWN_GROUP


def join_slices(parts: Sequence[ImageLabelSlices], repeats: Sequence[int]) -> ImageLabelSlices:
    """Concatenate slice sets, part i repeated ``repeats[i]`` times (to weight it in sampling)."""
    labels = [p.labels for p, r in zip(parts, repeats, strict=True) for _ in range(r)]
    images = [p.images for p, r in zip(parts, repeats, strict=True) for _ in range(r)]
    n = sum(len(x) for x in labels)
    zeros = np.zeros(n, dtype=np.int32)
    return ImageLabelSlices(
        labels=np.ascontiguousarray(np.concatenate(labels)),
        images=np.ascontiguousarray(np.concatenate(images)),
        subject_ids=("mixed",),
        subject_index=zeros,
        frame_index=zeros,
        slice_index=zeros,
    )


def resize_slices(slices: ImageLabelSlices, size: int) -> ImageLabelSlices:
    """Slices resampled in-plane to size x size (images bilinear, labels nearest); same FOV."""
    if slices.size == (size, size):
        return slices
    images = torch.from_numpy(slices.images)[:, None]
    labels = torch.from_numpy(slices.labels)[:, None].float()
    images = functional.interpolate(images, (size, size), mode="bilinear", antialias=True)
    labels = functional.interpolate(labels, (size, size), mode="nearest-exact")
    return ImageLabelSlices(
        labels=labels[:, 0].to(torch.uint8).numpy(),
        images=images[:, 0].clamp(-1, 1).numpy().astype(np.float32),
        subject_ids=slices.subject_ids,
        subject_index=slices.subject_index,
        frame_index=slices.frame_index,
        slice_index=slices.slice_index,
    )
