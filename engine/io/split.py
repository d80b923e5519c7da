"""Subject splits kept in the repository as ids only (never data): which subjects train and
which are held out for every figure.

File: JSON ``{"rule": "...", "train": [ids], "held_out": [ids]}``. The ACDC split of this
project is docs/acdc_split.json (made by :func:`stratified_split`, see its rule).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from cardio_explorer.engine.errors import CardioInputError

Part = Literal["train", "held_out"]
PARTS = ("train", "held_out")


def stratified_split(groups: Mapping[str, str], every: int = 4) -> dict[str, list[str]]:
    """Per group, ids in sorted order; every ``every``-th one (the 4th, 8th, ...) is held out.

    A fixed rule, no random numbers and no look at the data: the same ids on every machine.
    """
    by_group: dict[str, list[str]] = {}
    for sid, group in groups.items():
        by_group.setdefault(group, []).append(sid)
    held = sorted(
        sid
        for ids in by_group.values()
        for i, sid in enumerate(sorted(ids))
        if i % every == every - 1
    )
    return {"train": sorted(set(groups) - set(held)), "held_out": held}


def read_split(path: str | Path, part: Part) -> list[str]:
    """The ids of one part of a split file; one clear error for a bad file or part."""
    path = Path(path)
    if part not in PARTS:
        raise CardioInputError("split part", f"must be one of {PARTS}, got {part!r}")
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardioInputError(path, f"cannot read the split ({type(exc).__name__})") from None
    ids = split.get(part) if isinstance(split, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise CardioInputError(path, f"needs a non-empty list of subject ids under {part!r}")
    other = split.get("held_out" if part == "train" else "train") or []
    overlap = sorted(set(ids) & set(other))
    if overlap:
        raise CardioInputError(path, f"ids both in train and held_out: {', '.join(overlap[:5])}")
    return sorted(ids)


def write_split(path: str | Path, split: Mapping[str, Sequence[str]], rule: str) -> Path:
    """Write a split file (ids only) with the rule that made it."""
    path = Path(path)
    body = {"rule": rule, "train": list(split["train"]), "held_out": list(split["held_out"])}
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    return path
