"""Writes synthetic subjects in the ACDC layout, and the cohort's manifest.

``<id>/Info.cfg`` (ED, ES 1-based, Group with ACDC names, Height, Weight, NbFrame, plus Age, Sex,
SBP), ``<id>_frameNN.nii.gz`` and ``<id>_frameNN_gt.nii.gz`` for the ED and ES frames,
``<id>_4d.nii.gz`` (image, time last) and ``<id>_4d_gt.nii.gz`` (labels of every frame). Label
files hold ACDC values (1 RV, 2 MYO, 3 LV).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cardio_explorer.engine.cohort.generate import SyntheticSubject
from cardio_explorer.engine.io.acdc import write_info_cfg
from cardio_explorer.engine.io.atomic import atomic_write_csv
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume

MANIFEST_COLUMNS = (
    "subject",
    "group",
    "sex",
    "age",
    "height",
    "weight",
    "sbp",
    "bsa",
    "lvedv_ml",
    "lvesv_ml",
    "lvsv_ml",
    "lvef",
    "rvedv_ml",
    "rvesv_ml",
    "rvsv_ml",
    "rvef",
    "lvm_g",
    "max_wall_mm",
    "ed_frame",
    "es_frame",
    "n_frames",
    "n_slices",
    "spacing_z",
    "spacing_y",
    "spacing_x",
)


def write_subject(subject: SyntheticSubject, cohort_dir: Path) -> Path:
    """Write one subject's folder; returns it."""
    sid = subject.subject_id
    folder = Path(cohort_dir) / sid
    folder.mkdir(exist_ok=False)
    c = subject.conditions
    n_frames = subject.labels.n_frames
    write_info_cfg(
        folder / "Info.cfg",
        {
            "ED": subject.ed_frame + 1,
            "ES": subject.es_frame + 1,
            "Group": subject.group,
            "Height": c.height,
            "NbFrame": n_frames,
            "Weight": c.weight,
            "Age": c.age,
            "Sex": c.sex,
            "SBP": c.sbp,
        },
    )
    for t in sorted({subject.ed_frame, subject.es_frame}):
        stem = folder / f"{sid}_frame{t + 1:02d}"
        write_label_volume(
            subject.labels.frame(t), stem.with_name(stem.name + "_gt.nii.gz"), acdc_labels=True
        )
        if subject.images is not None:
            write_image_volume(
                subject.images.frame(t), stem.with_name(stem.name + ".nii.gz"), quantise=True
            )
    write_label_volume(subject.labels, folder / f"{sid}_4d_gt.nii.gz", acdc_labels=True)
    if subject.images is not None:
        write_image_volume(subject.images, folder / f"{sid}_4d.nii.gz", quantise=True)
    return folder


def manifest_row(subject: SyntheticSubject) -> dict[str, Any]:
    """The subject's manifest row: conditions and phenotypes measured on its labels."""
    c = subject.conditions
    sz, sy, sx = subject.labels.spacing_zyx
    row: dict[str, Any] = {
        "subject": subject.subject_id,
        "group": subject.group,
        "sex": c.sex,
        "age": c.age,
        "height": c.height,
        "weight": c.weight,
        "sbp": c.sbp,
        "bsa": round(c.bsa, 4),
    }
    row.update({k: round(v, 3) for k, v in subject.phenotypes.as_dict().items()})
    row.update(
        {
            "ed_frame": subject.ed_frame + 1,
            "es_frame": subject.es_frame + 1,
            "n_frames": subject.labels.n_frames,
            "n_slices": subject.labels.spatial_shape[0],
            "spacing_z": round(sz, 4),
            "spacing_y": round(sy, 4),
            "spacing_x": round(sx, 4),
        }
    )
    return row


def write_manifest(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write manifest.csv (one row per subject, MANIFEST_COLUMNS order)."""
    return atomic_write_csv(path, MANIFEST_COLUMNS, rows)
