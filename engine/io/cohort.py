"""Read a cohort folder whatever its layout: ACDC (and the synthetic cohort), M&Ms, generic."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.acdc import INFO_CFG, read_acdc_subject
from cardio_explorer.engine.io.common import Frames, select_ids, with_progress
from cardio_explorer.engine.io.generic import (
    LabelConvention,
    is_generic_folder,
    read_generic_cohort,
)
from cardio_explorer.engine.io.mnms import is_mnms_folder, read_mnms_cohort
from cardio_explorer.engine.subject import Subject


class Layout(StrEnum):
    """Folder layouts :func:`read_cohort` recognises."""

    ACDC = "acdc"
    MNMS = "mnms"
    GENERIC = "generic"


def acdc_subject_folders(root: Path) -> dict[str, Path]:
    """Subject id -> folder of every ``*/Info.cfg`` (or ``*/*/Info.cfg``, e.g. training/testing)."""
    if (root / INFO_CFG).is_file():
        return {root.name: root}
    for pattern in (f"*/{INFO_CFG}", f"*/*/{INFO_CFG}"):
        found: dict[str, Path] = {}
        for cfg in sorted(root.glob(pattern)):
            sid = cfg.parent.name
            if sid in found:
                raise CardioInputError(cfg.parent, f"subject id {sid} appears twice in {root}")
            found[sid] = cfg.parent
        if found:
            return found
    return {}


def detect_layout(folder: str | Path) -> Layout:
    """The layout of a cohort folder; one clear error for a missing, empty or unknown folder."""
    root = Path(folder)
    if not root.exists():
        raise CardioInputError(root, "folder not found")
    if not root.is_dir():
        raise CardioInputError(root, "not a folder")
    if not any(root.iterdir()):
        raise CardioInputError(root, "folder is empty")
    if acdc_subject_folders(root):
        return Layout.ACDC
    if is_mnms_folder(root):
        return Layout.MNMS
    if is_generic_folder(root):
        return Layout.GENERIC
    raise CardioInputError(
        root,
        "unrecognised layout: expected subject folders with Info.cfg (ACDC), M&Ms "
        "<code>_sa_gt.nii.gz files, or NIfTI label files (<id>_ED.nii.gz, <id>_ES.nii.gz)",
    )


def read_cohort(
    folder: str | Path,
    *,
    frames: Frames = "ed_es",
    images: bool = False,
    subject_ids: list[str] | None = None,
    progress: bool = False,
    labels: LabelConvention = "internal",
) -> list[Subject]:
    """Every subject of a cohort folder sorted by id; a bad subject is an error naming it.

    labels: label convention of a generic folder ("internal" or "acdc"); ACDC folders are
    always ACDC values and M&Ms always internal.
    """
    if frames not in ("ed_es", "all"):
        raise CardioInputError("frames", f"must be 'ed_es' or 'all', got {frames!r}")
    root = Path(folder)
    layout = detect_layout(root)
    if layout is Layout.ACDC:
        folders = acdc_subject_folders(root)
        ids = select_ids(root, folders, subject_ids)
        return [
            read_acdc_subject(folders[sid], frames=frames, images=images)
            for sid in with_progress(ids, progress, "ACDC subjects")
        ]
    if layout is Layout.MNMS:
        return read_mnms_cohort(
            root, frames=frames, images=images, subject_ids=subject_ids, progress=progress
        )
    if images:
        raise CardioInputError(root, "a generic folder holds label files only; images=False")
    return read_generic_cohort(
        root, labels=labels, frames=frames, subject_ids=subject_ids, progress=progress
    )
