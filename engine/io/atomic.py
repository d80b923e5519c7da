"""Atomic file writes: nothing half-written is left behind when writing fails."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cardio_explorer.engine.errors import CardioInputError

_DOUBLE_SUFFIXES = (".nii.gz", ".tar.gz")


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_DEFAULT_MODE = _default_file_mode()


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    The temporary name keeps the suffix (nibabel picks the format from it). On any error the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise CardioInputError(path, "folder does not exist")
    if path.is_dir():
        raise CardioInputError(path, "is a folder; give a file name")
    try:
        tmp = _temporary_beside(path)
    except OSError as error:
        raise write_error(path, error) from None
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise write_error(path, error) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_texts(texts: Mapping[Path, str]) -> list[Path]:
    """Write several UTF-8 text files all or none: every temporary is complete before a rename."""
    done: list[tuple[Path, Path]] = []
    try:
        for path, text in texts.items():
            if path.is_dir():
                raise CardioInputError(path, "is a folder; give a file name")
            try:
                tmp = _temporary_beside(path)
                done.append((tmp, path))
                tmp.write_text(text, encoding="utf-8")
            except OSError as error:
                raise write_error(path, error) from None
        for tmp, path in done:
            try:
                os.replace(tmp, path)
            except OSError as error:
                raise write_error(path, error) from None
    except BaseException:
        for tmp, _ in done:
            tmp.unlink(missing_ok=True)
        raise
    return [path for _, path in done]


def write_error(path: Path, error: OSError) -> CardioInputError:
    """One line for a failed write: the path and the system's reason (disk full, read-only)."""
    reason = error.strerror or str(error) or type(error).__name__
    return CardioInputError(path, f"cannot write ({reason}); nothing was written")


def check_output_file(path: str | Path, overwrite: bool, flag: str = "--out") -> Path:
    """Refuse, before any work, an output file that exists (unless overwrite) or cannot be made.

    Checks: not a folder, the nearest existing parent is a folder we can write into.
    """
    path = Path(path)
    if path.is_dir():
        raise CardioInputError(flag, f"{path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise CardioInputError(flag, f"{path} exists; choose another name or pass --overwrite")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CardioInputError(flag, f"{parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(parent).f_flag & os.ST_RDONLY
        reason = "read-only file system" if read_only else "permission denied"
        raise CardioInputError(flag, f"cannot write into {parent} ({reason})")
    return path


def _temporary_beside(path: Path) -> Path:
    """An empty temporary file in ``path``'s folder; it keeps the suffix (nibabel needs it)."""
    lower = path.name.lower()
    suffix = next((s for s in _DOUBLE_SUFFIXES if lower.endswith(s)), path.suffix)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); a dataset or checkpoint is meant to be shared.
    os.chmod(tmp, _DEFAULT_MODE)
    return tmp


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_csv(
    path: str | Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> Path:
    """Write a CSV with a header of ``columns`` and one line per row, atomically."""
    rows = list(rows)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, write)
