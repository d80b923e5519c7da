"""Generic layout: a folder of label files plus an optional CSV of conditions.

Label files, one subject each: ``<id>_ED.nii.gz`` and ``<id>_ES.nii.gz`` (an optional ``_gt``
before the suffix is allowed), or ``<id>.nii.gz`` alone: a 3D file is the ED frame, a 3D+t file
gives every frame (ED frame 0 unless the CSV says otherwise). Conditions CSV: columns subject,
group, age, sex, height, weight, sbp and optionally ed, es (0-based frames of a 3D+t file);
``conditions.csv`` is used when present, else the folder's only CSV. The label values follow
``labels``: "internal" (1 LV, 2 MYO, 3 RV) or "acdc" (1 RV, 2 MYO, 3 LV).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.common import (
    Frames,
    check_same_grid,
    conditions_or_none,
    group_name,
    normalise_sex,
    number,
    pick,
    read_table,
    select_ids,
    split_frames,
    with_progress,
)
from cardio_explorer.engine.io.nifti import NIFTI_SUFFIXES, nifti_stem, read_label_volume
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume

LabelConvention = Literal["internal", "acdc"]

CONDITIONS_CSV = "conditions.csv"
_PHASE = re.compile(r"^(?P<id>.+?)_(?P<phase>ED|ES)(_gt)?$", re.IGNORECASE)
_SINGLE = re.compile(r"^(?P<id>.+?)(_gt)?$", re.IGNORECASE)
_SUBJECT_COLUMNS = ("subject", "subjectid", "id", "patient", "code", "externalcode")


@dataclass
class GenericFiles:
    """The label files found for one subject."""

    ed: Path | None = None
    es: Path | None = None
    single: Path | None = None


def generic_label_files(folder: str | Path) -> dict[str, GenericFiles]:
    """Subject id -> its label files, from the NIfTI names in folder (not recursive)."""
    folder = Path(folder)
    found: dict[str, GenericFiles] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not path.name.lower().endswith(NIFTI_SUFFIXES):
            continue
        stem = nifti_stem(path)
        phase = _PHASE.match(stem)
        if phase:
            files = found.setdefault(phase["id"], GenericFiles())
            slot = phase["phase"].lower()
            if getattr(files, slot) is not None:
                raise CardioInputError(path, f"a second {slot.upper()} file for {phase['id']}")
            setattr(files, slot, path)
            continue
        sid = _SINGLE.match(stem)["id"]  # type: ignore[index]
        files = found.setdefault(sid, GenericFiles())
        if files.single is not None:
            raise CardioInputError(path, f"a second label file for {sid}")
        files.single = path
    for sid, files in found.items():
        if files.single is not None and (files.ed or files.es):
            raise CardioInputError(
                files.single, f"{sid} has both a single file and _ED/_ES files; keep one kind"
            )
    return dict(sorted(found.items()))


def find_conditions_csv(folder: str | Path) -> Path | None:
    """conditions.csv in folder, else its only CSV file, else None."""
    folder = Path(folder)
    named = folder / CONDITIONS_CSV
    if named.is_file():
        return named
    csvs = sorted(folder.glob("*.csv"))
    return csvs[0] if len(csvs) == 1 else None


def read_conditions_csv(path: str | Path) -> dict[str, dict[str, Any]]:
    """Subject id -> group, conditions fields and optional 0-based ed/es, from a CSV."""
    path = Path(path)
    rows = read_table(path)
    if rows and not any(c in rows[0] for c in _SUBJECT_COLUMNS):
        raise CardioInputError(path, "no 'subject' column")
    table: dict[str, dict[str, Any]] = {}
    for row_number, row in enumerate(rows, start=2):
        sid = pick(row, *_SUBJECT_COLUMNS)
        if sid is None:
            continue
        where = f"{path} row {row_number}"
        entry: dict[str, Any] = {
            "group_code": pick(row, "group", "pathology", "diagnosis"),
            "age": number(pick(row, "age"), "age", where),
            "sex": normalise_sex(pick(row, "sex", "gender"), where),
            "height": number(pick(row, "height", "heightcm"), "height", where),
            "weight": number(pick(row, "weight", "weightkg"), "weight", where),
            "sbp": number(pick(row, "sbp", "systolicbloodpressure", "sbpmmhg"), "sbp", where),
        }
        for key in ("ed", "es"):
            value = number(pick(row, key), key.upper(), where)
            if value is not None and (value < 0 or not value.is_integer()):
                raise CardioInputError(where, f"{key} must be a 0-based frame index, got {value}")
            entry[key] = None if value is None else int(value)
        if sid in table:
            raise CardioInputError(where, f"subject {sid} appears twice")
        table[sid] = entry
    return table


def read_generic_subject(
    subject_id: str,
    files: GenericFiles,
    *,
    row: dict[str, Any] | None = None,
    labels: LabelConvention = "internal",
    frames: Frames = "ed_es",
    source: Path | None = None,
) -> Subject:
    """One subject of a generic folder."""
    acdc = _acdc(labels)
    row = row or {}
    vols: dict[int, LabelVolume] = {}
    if files.single is not None:
        vol = read_label_volume(files.single, acdc_labels=acdc)
        n_frames = vol.n_frames
        ed = row.get("ed") if row.get("ed") is not None else 0
        es = row.get("es") if vol.is_4d else None
        for phase, t in (("ED", ed), ("ES", es)):
            if t is not None and t >= n_frames:
                raise CardioInputError(
                    files.single, f"{phase} frame {t} but the file has {n_frames} frame(s)"
                )
        every = split_frames(vol)
        wanted = every if frames == "all" else {t: every[t] for t in {ed, es} if t is not None}
        vols = dict(sorted(wanted.items()))
    else:
        if files.ed is None:
            raise CardioInputError(files.es or subject_id, f"{subject_id} has an ES but no ED file")
        vols[0] = read_label_volume(files.ed, acdc_labels=acdc, ndim=3)
        ed, es, n_frames = 0, None, 1
        if files.es is not None:
            vols[1] = read_label_volume(files.es, acdc_labels=acdc, ndim=3)
            es, n_frames = 1, 2
    check_same_grid(subject_id, vols.values())
    info: dict[str, Any] = {"layout": "generic", "label_convention": labels}
    info.update(
        {k: row[k] for k in ("age", "sex", "height", "weight", "sbp") if row.get(k) is not None}
    )
    if row.get("group_code") is not None:
        info["group_code"] = row["group_code"]
    return Subject(
        subject_id=subject_id,
        group=group_name(row.get("group_code")),
        conditions=conditions_or_none(
            row.get("age"), row.get("sex"), row.get("height"), row.get("weight"), row.get("sbp")
        ),
        ed_frame=int(ed),
        es_frame=es,
        n_frames=n_frames,
        labels=vols,
        source=source,
        info=info,
    )


def _acdc(labels: str) -> bool:
    if labels not in ("internal", "acdc"):
        raise CardioInputError("labels", f"must be 'internal' or 'acdc', got {labels!r}")
    return labels == "acdc"


def is_generic_folder(folder: str | Path) -> bool:
    """True when folder directly holds NIfTI label files."""
    folder = Path(folder)
    return any(p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES) for p in folder.iterdir())


def read_generic_cohort(
    folder: str | Path,
    *,
    labels: LabelConvention = "internal",
    frames: Frames = "ed_es",
    subject_ids: list[str] | None = None,
    conditions_csv: str | Path | None = None,
    progress: bool = False,
) -> list[Subject]:
    """Every subject of a generic folder, sorted by id."""
    folder = Path(folder)
    _acdc(labels)
    files = generic_label_files(folder)
    if not files:
        raise CardioInputError(folder, "no NIfTI label files found")
    csv_path = Path(conditions_csv) if conditions_csv is not None else find_conditions_csv(folder)
    table = read_conditions_csv(csv_path) if csv_path is not None else {}
    ids = select_ids(folder, files, subject_ids)
    return [
        read_generic_subject(
            sid, files[sid], row=table.get(sid), labels=labels, frames=frames, source=folder
        )
        for sid in with_progress(ids, progress, "subjects")
    ]
