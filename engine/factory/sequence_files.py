"""Where a 4D sequence's files go in each layout, and which plan combinations are refused.

- ``flat``: ``<case>_4d_gt.nii.gz`` (labels) and ``<case>_4d.nii.gz`` (image) in one folder.
- ``acdc``: a patient folder per sequence, as the ACDC release: ``<case>/<case>_4d.nii.gz``
  (image), ``<case>_frameXX.nii.gz`` + ``_gt`` for ED and ES (1-based frame numbers, as
  Info.cfg), ``Info.cfg`` and, beyond ACDC, ``<case>_4d_gt.nii.gz`` with the labels of every
  frame (the project's ACDC reader takes it with ``frames="all"``).
- ``nnunet``: nnU-Net v2 is 3D, so each frame written is its own case ``<case>_fNN`` (1-based,
  as ACDC's frame numbers): ``imagesTr/<case>_fNN_0000.nii.gz`` and ``labelsTr/<case>_fNN.nii.gz``.
  ``frames="all"`` (default) writes every frame: the mid-cycle frames are what a synthetic
  sequence adds over ACDC, which labels ED and ES only; ``"ed-es"`` writes those two, as a
  network trained on ACDC sees them, for a tenth of the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.layouts import write_case_info
from cardio_explorer.engine.subject import Conditions
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

SEQUENCE_LAYOUTS = ("flat", "nnunet", "acdc")
FRAME_CHOICES = ("all", "ed-es")


def check_sequence_output(layout: str, images: bool, frames: str) -> None:
    """Refuse a layout, images and frames combination that cannot be written; before any work."""
    if layout not in SEQUENCE_LAYOUTS:
        raise CardioInputError("layout", f"must be one of {SEQUENCE_LAYOUTS}, got {layout!r}")
    if frames not in FRAME_CHOICES:
        raise CardioInputError("frames", f"must be one of {FRAME_CHOICES}, got {frames!r}")
    if layout == "nnunet" and not images:
        raise CardioInputError(
            "layout", "nnunet needs images (imagesTr); add --images or pick flat or acdc"
        )
    if frames != "all" and layout != "nnunet":
        raise CardioInputError(
            "frames",
            f"chooses the frames of --layout nnunet; {layout} writes every frame "
            f"({'and ED, ES apart' if layout == 'acdc' else 'in one 4D file'})",
        )


def frames_written(layout: str, frames: str, n_frames: int, es: int) -> list[int]:
    """0-based frames written as 3D cases (nnunet) or frame files (acdc); [] for flat."""
    if layout == "flat":
        return []
    if layout == "acdc" or frames == "ed-es":
        return sorted({0, es})  # ED is frame 0 of a CHeart cycle
    return list(range(n_frames))


def sequence_files(
    layout: str,
    case: str,
    labels: LabelVolume,
    image: ImageVolume | None,
    es: int,
    frames: str,
) -> tuple[list[tuple[str, str, Any]], dict[str, str], list[str]]:
    """A sequence's file tasks (path, 'label' | 'image', volume), manifest file columns
    (``file_labels``, ``file_images``: ';'-separated when several) and folders."""
    tasks: list[tuple[str, str, Any]] = []
    if layout == "flat":
        tasks.append((f"{case}_4d_gt.nii.gz", "label", labels))
        if image is not None:
            tasks.append((f"{case}_4d.nii.gz", "image", image))
        return tasks, _columns(tasks), []
    chosen = frames_written(layout, frames, labels.n_frames, es)
    if layout == "acdc":
        tasks.append((f"{case}/{case}_4d_gt.nii.gz", "label", labels))
        if image is not None:
            tasks.append((f"{case}/{case}_4d.nii.gz", "image", image))
        columns = _columns(tasks)  # the 4D files; the frame files follow from Info.cfg
        for t in chosen:
            stem = f"{case}/{case}_frame{t + 1:02d}"
            tasks.append((f"{stem}_gt.nii.gz", "label", labels.frame(t)))
            if image is not None:
                tasks.append((f"{stem}.nii.gz", "image", image.frame(t)))
        return tasks, columns, [case]
    if layout == "nnunet":
        if image is None:
            raise ValueError("nnunet needs images")  # check_sequence_output said so first
        for t in chosen:
            tasks.append((f"labelsTr/{case}_f{t + 1:02d}.nii.gz", "label", labels.frame(t)))
            tasks.append((f"imagesTr/{case}_f{t + 1:02d}_0000.nii.gz", "image", image.frame(t)))
        return tasks, _columns(tasks), ["labelsTr", "imagesTr"]
    raise ValueError(layout)


def _columns(tasks: list[tuple[str, str, Any]]) -> dict[str, str]:
    return {
        "file_labels": ";".join(p for p, kind, _ in tasks if kind == "label"),
        "file_images": ";".join(p for p, kind, _ in tasks if kind == "image"),
    }


def sequence_info(
    case: str, group: str, conditions: Conditions, n_frames: int, es: int
) -> Callable[[Path], object]:
    """What writes the case's Info.cfg (ACDC layout): ED 1, ES and NbFrame as written."""

    def write(folder: Path) -> object:
        return write_case_info(folder, case, group, conditions, ed=1, es=es + 1, n_frames=n_frames)

    return write
