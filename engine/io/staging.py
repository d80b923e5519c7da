"""Whole output folders written atomically: filled in a hidden sibling, renamed into place last.

An interrupted or failed run leaves nothing half-written under the requested name; the hidden
staging folder is removed on any error (a hard kill can leave a ``.NAME.partial-*`` sibling).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from cardio_explorer.engine.errors import CardioInputError


def check_output_folder(out: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty folder (unless overwrite), a file in the way, no parent."""
    if out.exists() and not out.is_dir():
        raise CardioInputError(out, "exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise CardioInputError(
            out, "output folder exists and is not empty; choose another or pass --overwrite"
        )
    if not out.parent.is_dir():
        raise CardioInputError(out, f"parent folder {out.parent} does not exist")


@contextlib.contextmanager
def staged_folder(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out``; on success it replaces ``out``.

    The checks run before anything is written, so a refused folder costs no work.
    """
    out = Path(out).absolute()
    check_output_folder(out, overwrite)
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace(staging: Path, out: Path) -> None:
    """Move the finished staging folder to ``out``; an old ``out`` is set aside, then removed."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)
