"""Paired image/label short-axis slices for SPADE training and the fidelity check.

Subjects must hold images and be preprocessed (engine/preprocess.py ``preprocess_subject``:
canonical orientation, ~1.5 mm in-plane, size x size crop, images in [-1, 1]); every frame with
both labels and an image gives its slices, empty ones (above the base, below the apex) included,
so the generator also learns slices without heart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.slices import SliceArrays
from cardio_explorer.engine.preprocess import DEFAULT_SPACING_MM, preprocess_subject
from cardio_explorer.engine.subject import Subject

PREPROCESS_HINT = "preprocess it first (engine.preprocess.preprocess_subject)"


@dataclass(frozen=True, eq=False)
class ImageLabelSlices(SliceArrays):
    """Paired slices and where each came from.

    labels: uint8 (N, H, W); images: float32 (N, H, W) in [-1, 1]; subject_index: int32 (N,)
    into ``subject_ids``; frame_index / slice_index: int32 (N,), frame and z of each slice.
    """

    labels: np.ndarray
    images: np.ndarray
    subject_ids: tuple[str, ...]
    subject_index: np.ndarray
    frame_index: np.ndarray
    slice_index: np.ndarray

    def take(self, indices: np.ndarray) -> ImageLabelSlices:
        """A subset of the slices (same subject table)."""
        return ImageLabelSlices(
            self.labels[indices],
            self.images[indices],
            self.subject_ids,
            self.subject_index[indices],
            self.frame_index[indices],
            self.slice_index[indices],
        )


def prepare_subjects(
    subjects: Sequence[Subject], size: int, spacing_mm: float = DEFAULT_SPACING_MM
) -> list[Subject]:
    """Preprocess every subject to size x size at ``spacing_mm`` (images normalised)."""
    return [preprocess_subject(s, spacing_mm=spacing_mm, size=size) for s in subjects]


def collect_image_label_slices(
    subjects: Sequence[Subject], size: int | None = None
) -> ImageLabelSlices:
    """Every slice of every frame that has both labels and an image, over all subjects.

    ``size``: required in-plane size (clear error naming the subject otherwise); None accepts
    any size shared by all subjects.
    """
    if not subjects:
        raise CardioInputError("cohort", "no subjects to take image/label slices from")
    labels, images, subject_index, frame_index, slice_index = [], [], [], [], []
    expected = (size, size) if size is not None else None
    for s, subject in enumerate(subjects):
        for frame in sorted(set(subject.labels) & set(subject.images)):
            lab, img = subject.labels[frame], subject.images[frame]
            if lab.is_4d or img.is_4d:
                raise CardioInputError(subject.subject_id, f"frame {frame} is 3D+t, expected 3D")
            if lab.data.shape != img.data.shape:
                raise CardioInputError(
                    subject.subject_id,
                    f"frame {frame}: labels {lab.data.shape} and image {img.data.shape} differ; "
                    + PREPROCESS_HINT,
                )
            plane = tuple(lab.data.shape[1:])
            expected = expected or plane
            if plane != expected:
                raise CardioInputError(
                    subject.subject_id,
                    f"frame {frame} slices are {plane[0]} x {plane[1]}, expected "
                    f"{expected[0]} x {expected[1]}; {PREPROCESS_HINT}",
                )
            data = img.data
            if data.size and (data.min() < -1.001 or data.max() > 1.001):
                raise CardioInputError(
                    subject.subject_id,
                    f"frame {frame} image is outside [-1, 1] "
                    f"({data.min():.3g} to {data.max():.3g}); {PREPROCESS_HINT}",
                )
            n = lab.data.shape[0]
            labels.append(lab.data)
            images.append(np.clip(data, -1.0, 1.0))
            subject_index.append(np.full(n, s, dtype=np.int32))
            frame_index.append(np.full(n, frame, dtype=np.int32))
            slice_index.append(np.arange(n, dtype=np.int32))
    if not labels:
        raise CardioInputError(
            "cohort",
            "no frame has both labels and an image; read the cohort with images "
            "(read_cohort(..., images=True))",
        )
    return ImageLabelSlices(
        labels=np.ascontiguousarray(np.concatenate(labels), dtype=np.uint8),
        images=np.ascontiguousarray(np.concatenate(images), dtype=np.float32),
        subject_ids=tuple(s.subject_id for s in subjects),
        subject_index=np.concatenate(subject_index),
        frame_index=np.concatenate(frame_index),
        slice_index=np.concatenate(slice_index),
    )
