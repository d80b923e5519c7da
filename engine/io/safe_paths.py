"""Ids that become file names, and output paths that must stay inside their output folder.

Ids from sources the user does not type (checkpoint headers, CSVs, file names, sessions) pass
:func:`check_safe_id` before they reach a path; :func:`child_path` resolves every output path
and refuses one that would land outside its folder (``..``, an absolute id, a symlink out).
"""

from __future__ import annotations

import re
from pathlib import Path

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.limits import MAX_ID_LENGTH

# A letter or digit, then letters, digits, '.', '_' or '-': no separators, no '..', no hidden.
SAFE_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ID_LENGTH - 1}}}")


def is_safe_id(value: object) -> bool:
    """True when ``value`` is a string matching SAFE_ID."""
    return isinstance(value, str) and SAFE_ID.fullmatch(value) is not None


def check_safe_id(value: object, thing: str | Path = "id") -> str:
    """``value`` when it is a safe id, else one error naming ``thing`` and the id."""
    if not is_safe_id(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise CardioInputError(
            thing,
            f"id {shown} cannot name a file: use at most {MAX_ID_LENGTH} letters, digits, "
            "'.', '_' or '-', starting with a letter or digit",
        )
    return value  # type: ignore[return-value]


def child_path(folder: str | Path, name: str | Path) -> Path:
    """``folder / name``, refused unless it resolves to a path inside ``folder``."""
    root = Path(folder).resolve()
    target = (root / name).resolve()
    if target == root or not target.is_relative_to(root):
        raise CardioInputError(name, f"would be written outside the output folder {root}")
    return target
