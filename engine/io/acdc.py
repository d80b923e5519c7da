"""ACDC layout: ``<id>/Info.cfg``, ``<id>_frameNN[_gt].nii.gz``, ``<id>_4d[_gt].nii.gz``.

Info.cfg frame numbers are 1-based (as ACDC); a :class:`Subject` holds 0-based frames. Label
files hold ACDC values (1 RV, 2 MYO, 3 LV) and are remapped to the internal order on load.
ACDC's Info.cfg has no age, sex or SBP, so a subject's ``conditions`` is None unless all five
conditions (Age, Sex, Height, Weight, SBP) are present (the synthetic cohort writes them);
height and weight are always in ``info``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import nibabel as nib

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write_text
from cardio_explorer.engine.io.common import Frames, check_same_grid, split_frames
from cardio_explorer.engine.io.nifti import read_image_volume, read_label_volume
from cardio_explorer.engine.limits import MAX_FRAMES, check_file_size, check_text
from cardio_explorer.engine.subject import (
    ACDC_GROUP_NAMES,
    GROUPS,
    PHASES,
    Conditions,
    Subject,
    check_condition,
)
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

INFO_CFG = "Info.cfg"
REQUIRED_KEYS = ("ED", "ES", "Group", "Height", "NbFrame", "Weight")
OPTIONAL_KEYS = ("Age", "Sex", "SBP")
_INT_KEYS = ("ED", "ES", "NbFrame")
_FLOAT_KEYS = ("Height", "Weight", "Age", "SBP")
_CANONICAL = {k.lower(): k for k in REQUIRED_KEYS + OPTIONAL_KEYS}
_FROM_ACDC_GROUP = {acdc: group for group, acdc in ACDC_GROUP_NAMES.items()}


# Info.cfg ------------------------------------------------------------------------------------
def read_info_cfg(path: str | Path) -> dict[str, Any]:
    """Parse an Info.cfg: ED, ES, NbFrame (ints, 1-based), Group, Height, Weight [, Age, Sex, SBP].

    Keys are matched case-insensitively and returned in their canonical spelling; other keys
    are kept as strings. Missing or malformed entries raise one CardioInputError.
    """
    path = Path(path)
    if not path.is_file():
        raise CardioInputError(path, "Info.cfg not found")
    check_file_size(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CardioInputError(path, f"cannot read ({type(exc).__name__})") from None
    raw: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if ":" not in stripped:
            raise CardioInputError(path, f"line {number} is not 'Key: value': {stripped!r}")
        key, value = (part.strip() for part in stripped.split(":", 1))
        key = _CANONICAL.get(key.lower(), key)
        if not key:
            raise CardioInputError(path, f"line {number} has no key")
        if key in raw:
            raise CardioInputError(path, f"'{key}' appears twice")
        raw[key] = value
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise CardioInputError(path, f"missing {', '.join(missing)}")
    info: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _INT_KEYS:
            info[key] = _parse_int(path, key, value)
        elif key in _FLOAT_KEYS:
            info[key] = check_condition(key.lower(), _parse_positive(path, key, value), path)
        elif key == "Sex":
            sex = value.strip().upper()[:1]
            if sex not in ("F", "M"):
                raise CardioInputError(path, f"Sex must be F or M, got {value!r}")
            info[key] = sex
        else:
            info[key] = check_text(f"{path}: {key[:40]}", value)
    nb = info["NbFrame"]
    if not 1 <= nb <= MAX_FRAMES:
        raise CardioInputError(path, f"NbFrame must be between 1 and {MAX_FRAMES}, got {nb}")
    for key in PHASES:
        if not 1 <= info[key] <= nb:
            raise CardioInputError(
                path, f"{key} = {info[key]} is outside frames 1..{nb} (frames are 1-based)"
            )
    return info


def _parse_int(path: Path, key: str, value: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise CardioInputError(path, f"{key} is not a number: {value!r}") from None
    if not number.is_integer():
        raise CardioInputError(path, f"{key} must be a whole number, got {value!r}")
    return int(number)


def _parse_positive(path: Path, key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise CardioInputError(path, f"{key} is not a number: {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise CardioInputError(path, f"{key} must be a positive number, got {value!r}")
    return number


def write_info_cfg(path: str | Path, info: dict[str, Any]) -> Path:
    """Write an Info.cfg atomically; ED/ES are 1-based; Group 'ARV' is written as ACDC's 'RV'."""
    path = Path(path)
    missing = [k for k in REQUIRED_KEYS if k not in info or info[k] is None]
    if missing:
        raise CardioInputError(path, f"cannot write Info.cfg without {', '.join(missing)}")
    group = str(info["Group"])
    values = dict(info, Group=ACDC_GROUP_NAMES.get(group, group))
    ordered = list(REQUIRED_KEYS) + [k for k in OPTIONAL_KEYS if k in values]
    ordered += [k for k in values if k not in ordered]
    lines = []
    for key in ordered:
        value = values[key]
        if value is None:
            continue
        if key in _INT_KEYS:
            value = int(value)
        elif isinstance(value, float):
            value = round(value, 4)
        text = str(value)
        if "\n" in text or ":" in key:
            raise CardioInputError(path, f"cannot write {key!r}: {text!r}")
        lines.append(f"{key}: {text}")
    return atomic_write_text(path, "\n".join(lines) + "\n")


# subjects ----------------------------------------------------------------------------------
def acdc_group(group: str, where: str | Path) -> str:
    """Internal group name from an ACDC one ('RV' -> 'ARV')."""
    name = _FROM_ACDC_GROUP.get(group.strip().upper(), group.strip().upper())
    if name not in GROUPS:
        raise CardioInputError(where, f"unknown Group {group!r}; expected one of {GROUPS}")
    return name


def conditions_from_info(info: dict[str, Any]) -> Conditions | None:
    """Conditions when Age, Sex, Height, Weight and SBP are all known, else None."""
    keys = ("Age", "Sex", "Height", "Weight", "SBP")
    if any(info.get(k) is None for k in keys):
        return None
    return Conditions(
        age=info["Age"],
        sex=info["Sex"],
        height=info["Height"],
        weight=info["Weight"],
        sbp=info["SBP"],
    )


def _frame_path(folder: Path, sid: str, frame0: int, gt: bool) -> Path:
    return folder / f"{sid}_frame{frame0 + 1:02d}{'_gt' if gt else ''}.nii.gz"


def _check_4d_frames(path: Path, n_frames: int, cfg: Path) -> None:
    """Compare the 4D file's frame count with NbFrame from its header (no voxel read)."""
    try:
        shape = nib.load(str(path)).shape
    except Exception:
        return  # the full read names the problem precisely
    frames = shape[3] if len(shape) >= 4 else 1
    if frames != n_frames:
        raise CardioInputError(
            path, f"has {frames} frames but {cfg.name} says NbFrame = {n_frames}"
        )


def read_acdc_subject(
    folder: str | Path, frames: Frames = "ed_es", images: bool = False
) -> Subject:
    """Read one ACDC-layout subject folder (real ACDC or the synthetic cohort).

    frames="ed_es": labels (and images) of ED and ES. frames="all": every frame of
    ``<id>_4d_gt.nii.gz`` when present (else ED and ES, all ACDC labels) and every frame of
    ``<id>_4d.nii.gz`` when images.
    """
    folder = Path(folder)
    if frames not in ("ed_es", "all"):
        raise CardioInputError("frames", f"must be 'ed_es' or 'all', got {frames!r}")
    if not folder.is_dir():
        raise CardioInputError(folder, "subject folder not found")
    sid = folder.name
    cfg = folder / INFO_CFG
    info = read_info_cfg(cfg)
    n_frames = int(info["NbFrame"])
    ed, es = int(info["ED"]) - 1, int(info["ES"]) - 1
    image_4d = folder / f"{sid}_4d.nii.gz"
    label_4d = folder / f"{sid}_4d_gt.nii.gz"
    for path in (image_4d, label_4d):
        if path.is_file():
            _check_4d_frames(path, n_frames, cfg)

    labels: dict[int, LabelVolume] = {}
    if frames == "all" and label_4d.is_file():
        labels = split_frames(read_label_volume(label_4d, acdc_labels=True))
    else:
        for f in sorted({ed, es}):
            labels[f] = _read_frame_labels(folder, sid, f, label_4d)

    vols: dict[int, ImageVolume] = {}
    if images:
        if frames == "all" or not all(
            _frame_path(folder, sid, f, False).is_file() for f in {ed, es}
        ):
            if not image_4d.is_file():
                raise CardioInputError(image_4d, "image file not found")
            vols = split_frames(read_image_volume(image_4d))
            if frames == "ed_es":
                vols = {f: vols[f] for f in sorted({ed, es})}
        else:
            for f in sorted({ed, es}):
                vols[f] = read_image_volume(_frame_path(folder, sid, f, False), ndim=3)

    check_same_grid(sid, [*labels.values(), *vols.values()])
    group = acdc_group(str(info["Group"]), cfg)
    # Known conditions in lower case, as every reader's info has them (M&Ms gives no SBP).
    extra: dict[str, Any] = {"layout": "acdc"}
    extra.update(
        {k.lower(): info[k] for k in ("Age", "Sex", "Height", "Weight", "SBP") if k in info}
    )
    extra.update({k: v for k, v in info.items() if k not in REQUIRED_KEYS + OPTIONAL_KEYS})
    return Subject(
        subject_id=sid,
        group=group,
        conditions=conditions_from_info(info),
        ed_frame=ed,
        es_frame=es,
        n_frames=n_frames,
        labels=labels,
        images=vols,
        source=folder,
        info=extra,
    )


def _read_frame_labels(folder: Path, sid: str, frame0: int, label_4d: Path) -> LabelVolume:
    path = _frame_path(folder, sid, frame0, True)
    if path.is_file():
        return read_label_volume(path, acdc_labels=True, ndim=3)
    if label_4d.is_file():
        return read_label_volume(label_4d, acdc_labels=True).frame(frame0)
    raise CardioInputError(path, "label file not found")
