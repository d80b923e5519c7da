"""Whole output folders written atomically: filled in a hidden sibling, renamed into place last.

An interrupted or failed run leaves nothing half-written under the requested name; the hidden
staging folder is removed on any error (a hard kill can leave a ``.NAME.partial-*`` sibling).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import write_error

log = logging.getLogger(__name__)
# .NAME.partial-PID-HEX: the pid tells a live run's staging from a killed run's debris.
_STAGING = re.compile(r"\.(?P<name>.+)\.partial-(?:(?P<pid>\d+)-)?[0-9a-f]{8}")


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
    remove_stale_staging(out)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
    except OSError as error:
        raise write_error(out, error) from None
    try:
        yield staging
        _replace(staging, out)
    except CardioInputError as error:
        shutil.rmtree(staging, ignore_errors=True)
        # name the file the user asked for, not its hidden staging twin
        thing = error.thing.replace(str(staging), str(out), 1)
        raise CardioInputError(thing, error.problem) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove the staging folders a killed run left beside ``out``; says which in the log.

    A staging folder whose run is still alive (its pid in the name) is left alone.
    """
    removed = []
    for path in sorted(out.parent.glob(f".{glob.escape(out.name)}.partial-*")):
        match = _STAGING.fullmatch(path.name)
        if not path.is_dir() or match is None or match["name"] != out.name:
            continue
        if match["pid"] is not None and _alive(int(match["pid"])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        log.warning("removed %s, left by an interrupted run", path)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (ours or another user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replace(staging: Path, out: Path) -> None:
    """Move the finished staging folder to ``out``; an old ``out`` is set aside, then removed."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)
