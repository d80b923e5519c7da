"""Helpers the format readers share: frame splitting, grid checks, tolerant CSV tables."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from tqdm import tqdm

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.limits import (
    CONDITION_BOUNDS,
    MAX_CSV_FIELD,
    MAX_SUBJECTS,
    check_file_size,
)
from cardio_explorer.engine.subject import GROUPS, Conditions, check_condition
from cardio_explorer.engine.volume import Volume

V = TypeVar("V", bound=Volume)
T = TypeVar("T")
# Which frames a reader loads: ED and ES only, or every frame of the cycle.
Frames = Literal["ed_es", "all"]

# "nan" is not here: NaN in a table is refused as not finite, an empty cell is missing.
_MISSING = {"", "na", "n/a", "none", "null", "-", "?"}
# Pathology codes of other datasets that name one of our groups.
_GROUP_ALIASES = {"RV": "ARV", "ARVC": "ARV", "ARVD": "ARV", "MI": "MINF", "NORMAL": "NOR"}


def split_frames(vol: V) -> dict[int, V]:
    """Frames of a 3D+t volume as 3D volumes (a 3D volume is frame 0)."""
    if not vol.is_4d:
        return {0: vol}
    return {t: vol.frame(t) for t in range(vol.n_frames)}  # type: ignore[misc]


def check_same_grid(subject_id: str, volumes: Iterable[Volume]) -> None:
    """All volumes of a subject must share one voxel grid, else one clear error."""
    volumes = list(volumes)
    if not volumes:
        raise CardioInputError(subject_id, "no label or image volumes found")
    first = volumes[0]
    for other in volumes[1:]:
        if not first.same_grid(other):
            raise CardioInputError(
                subject_id,
                f"{other.name} is on a different voxel grid from {first.name} "
                f"(shape {other.spatial_shape} vs {first.spatial_shape}, or the affine differs)",
            )


def column_key(name: str) -> str:
    """Column name reduced to lower-case letters and digits ('External code' -> 'externalcode')."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_missing(value: Any) -> bool:
    """True for empty, NaN and the usual 'not available' spellings."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return str(value).strip().lower() in _MISSING


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV (comma, semicolon or tab) keyed by :func:`column_key` of the header;
    the file, its rows and its fields are bounded (see engine/limits.py)."""
    check_file_size(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CardioInputError(path, f"cannot read ({type(exc).__name__})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise CardioInputError(path, "empty table")
    if len(lines) > MAX_SUBJECTS + 1:
        raise CardioInputError(path, f"{len(lines) - 1:,} rows; at most {MAX_SUBJECTS:,}")
    delimiter = max((",", ";", "\t"), key=lines[0].count)
    reader = csv.reader(lines, delimiter=delimiter)
    rows = []
    try:
        header = [column_key(h) for h in _bounded(path, 1, next(reader))]
        for number, row in enumerate(reader, start=2):
            if len(row) > len(header):
                raise CardioInputError(path, f"row {number} has more fields than the header")
            row = _bounded(path, number, row)
            rows.append(dict(zip(header, [v.strip() for v in row], strict=False)))
    except csv.Error as exc:  # e.g. a field over csv's own limit of 128 KB
        detail = (
            f"a field longer than {MAX_CSV_FIELD:,} characters" if "larger" in str(exc) else exc
        )
        raise CardioInputError(path, f"not a readable CSV ({detail})") from None
    return rows


def _bounded(path: Path, number: int, row: list[str]) -> list[str]:
    """The row, unless one of its fields is longer than MAX_CSV_FIELD."""
    for field in row:
        if len(field) > MAX_CSV_FIELD:
            raise CardioInputError(
                path,
                f"row {number} has a field of {len(field):,} characters; at most {MAX_CSV_FIELD:,}",
            )
    return row


def pick(row: dict[str, str], *aliases: str) -> str | None:
    """First non-missing value among the column aliases (already :func:`column_key` form)."""
    for alias in aliases:
        value = row.get(alias)
        if not is_missing(value):
            return value
    return None


def number(value: str | None, what: str, where: str | Path) -> float | None:
    """Float from a table cell, None when missing, one clear error when malformed or not
    finite (NaN and inf are not 'missing': leave the cell empty for that); conditions are
    checked against CONDITION_BOUNDS."""
    text = "" if value is None else str(value).strip().lower().lstrip("+-")
    if text in ("nan", "inf", "infinity"):
        raise CardioInputError(where, f"{what} is not a finite number: {value!r}")
    if is_missing(value):
        return None
    try:
        result = float(str(value).replace(",", "."))
    except ValueError:
        raise CardioInputError(where, f"{what} is not a number: {value!r}") from None
    if not math.isfinite(result):
        raise CardioInputError(where, f"{what} is not a finite number: {value!r}")
    if what.lower() in CONDITION_BOUNDS:
        check_condition(what.lower(), result, where)
    return result


def group_name(code: str | None) -> str | None:
    """Our group for a pathology code (NOR, DCM, HCM, MINF, ARV and aliases), else None."""
    if is_missing(code):
        return None
    key = str(code).strip().upper()
    key = _GROUP_ALIASES.get(key, key)
    return key if key in GROUPS else None


def conditions_or_none(
    age: float | None,
    sex: str | None,
    height: float | None,
    weight: float | None,
    sbp: float | None,
) -> Conditions | None:
    """Conditions when all five are known (SBP included), else None."""
    if any(is_missing(v) for v in (age, sex, height, weight, sbp)):
        return None
    return Conditions(age=age, sex=sex, height=height, weight=weight, sbp=sbp)  # type: ignore[arg-type]


def normalise_sex(value: str | None, where: str | Path) -> str | None:
    """'F'/'M' from F, M, female, male (any case); None when missing."""
    if is_missing(value):
        return None
    letter = str(value).strip().upper()[:1]
    if letter not in ("F", "M"):
        raise CardioInputError(where, f"sex must be F or M, got {value!r}")
    return letter


def select_ids(root: Path, available: Iterable[str], wanted: Iterable[str] | None) -> list[str]:
    """The wanted ids (or all) in sorted order; ids not in the folder are one clear error."""
    available = set(available)
    wanted = available if wanted is None else set(wanted)
    missing = sorted(wanted - available)
    if missing:
        raise CardioInputError(root, f"no subject(s) {', '.join(missing[:5])} in this folder")
    if len(wanted) > MAX_SUBJECTS:
        raise CardioInputError(root, f"{len(wanted):,} subjects; at most {MAX_SUBJECTS:,}")
    return sorted(wanted)


def with_progress(items: list[T], progress: bool, desc: str) -> Iterable[T]:
    """The items, behind a tqdm bar when progress is asked for."""
    if not progress:
        return items
    return tqdm(items, desc=desc, unit="subject")
