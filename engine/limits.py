"""Every size bound of the engine and the command line, in one place, checked before allocation.

Each bound is generous for real cardiac data (ACDC, M&Ms, the bundled models) and small enough
that a refusal comes within seconds and well under 1.5 GB of memory. The README's "Limits"
table lists them; ``LIMITS`` below is that table's source.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cardio_explorer.engine.errors import CardioInputError

# A volume read from a file: ACDC's largest 4D file holds 17 M voxels; an M&Ms 4D stack of
# 512 x 440 x 15 x 30 holds 101 M; 2**27 (134 M) leaves room.
MAX_VOLUME_VOXELS = 2**27
# A NIfTI file (decompressed): 134 M voxels of float32 plus a header; a stream that expands past
# what its header declares (or past this) is refused while decompressing.
MAX_NIFTI_BYTES = 4 * MAX_VOLUME_VOXELS + 2**20
# A generated subject (cohort grid x frames): the default dense one holds 21 M voxels.
MAX_GENERATED_VOXELS = 2**26
MAX_FRAMES = 128  # time frames of a 3D+t volume or cohort cycle (ACDC: at most 35)
MAX_GRID_SIDE = 1024  # voxels along one axis of a generated grid
SPACING_MM = (1e-3, 100.0)  # voxel spacing of a file or a generated grid, mm
# A plan (cohort or synthesized dataset) as a whole.
MAX_SUBJECTS = 100_000
MAX_PLAN_CASES = 1_000_000
MAX_PLAN_VOXELS = 10**12  # about a TB of uint8 labels
MAX_SEEDS = 100_000
MAX_SEED = 2**32 - 1
MAX_STEPS = 101  # alpha steps: file names keep alpha to 0.01
MAX_MISALIGNMENT_MM = 50.0
MAX_BATCH = 4096
MAX_REPEATS = 10_000
MAX_WORKERS = 64
# Text.
MAX_ID_LENGTH = 64
MAX_STRING = 4096
MAX_CSV_FIELD = 4096
MAX_TEXT_FILE_BYTES = 64 * 2**20  # a CSV, Info.cfg or session file
MAX_JSON_DEPTH = 32
MAX_SESSION_EXTRA_CHARS = 64 * 1024  # free-form notes a session carries along, as JSON
# Clinical conditions: (lowest, highest) accepted, far outside any real patient.
CONDITION_BOUNDS = {
    "age": (0.0, 130.0),
    "height": (30.0, 260.0),
    "weight": (1.0, 500.0),
    "sbp": (40.0, 300.0),
}

# (what, bound, why): the README's Limits table.
LIMITS: tuple[tuple[str, str, str], ...] = (
    ("voxels per volume read (all frames)", f"{MAX_VOLUME_VOXELS:,}", "NIfTI header"),
    ("bytes of a decompressed NIfTI", f"{MAX_NIFTI_BYTES:,}", "checked while streaming"),
    ("voxels per generated subject", f"{MAX_GENERATED_VOXELS:,}", "cohort --grid x --frames"),
    ("frames", f"{MAX_FRAMES}", "NIfTI dim[4], cohort --frames"),
    ("grid side", f"{MAX_GRID_SIDE}", "cohort --grid"),
    ("voxel spacing, mm", f"{SPACING_MM[0]:g}-{SPACING_MM[1]:g}", "pixdim, affine, --spacing"),
    ("subjects", f"{MAX_SUBJECTS:,}", "cohort --n, CSV rows, --limit"),
    ("cases of a plan", f"{MAX_PLAN_CASES:,}", "synthesize jobs"),
    ("voxels of a plan", f"{MAX_PLAN_VOXELS:,}", "cohort --n x frames x grid"),
    ("seeds", f"{MAX_SEEDS:,} values, each 0-{MAX_SEED}", "--seeds, cohort --seed"),
    ("alpha steps", f"{MAX_STEPS}", "synthesize --steps, --alpha-steps"),
    ("misalignment, mm", f"0-{MAX_MISALIGNMENT_MM:g}", "cohort --misalignment"),
    ("threads", "the CPUs this process may use", "--threads"),
    ("workers", f"4 x the CPUs, at most {MAX_WORKERS}", "cohort --workers"),
    ("batch", f"{MAX_BATCH}", "--batch-size"),
    ("repeats", f"1-{MAX_REPEATS:,}", "bench --repeats"),
    ("id length", f"{MAX_ID_LENGTH}, letters, digits, '.', '_', '-'", "ids that name files"),
    ("string length", f"{MAX_STRING}", "Info.cfg values, sessions"),
    ("CSV field", f"{MAX_CSV_FIELD} characters", "conditions and information CSVs"),
    ("text file", f"{MAX_TEXT_FILE_BYTES:,} bytes", "CSV, Info.cfg, session"),
    ("JSON depth", f"{MAX_JSON_DEPTH}", "checkpoint headers, sessions"),
    ("session notes", f"{MAX_SESSION_EXTRA_CHARS:,} characters of JSON", "a session's extra"),
    *(
        (f"condition {name}", f"{low:g}-{high:g}", "Info.cfg, CSVs, sessions, the app")
        for name, (low, high) in CONDITION_BOUNDS.items()
    ),
)


def check_count(thing: str, value: Any, low: int, high: int) -> int:
    """A whole number in [low, high], or one error naming ``thing``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CardioInputError(thing, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise CardioInputError(thing, f"must be between {low:,} and {high:,}, got {value:,}")
    return value


def check_real(thing: str, value: Any, low: float, high: float) -> float:
    """A finite number in [low, high], or one error naming ``thing``."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise CardioInputError(thing, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise CardioInputError(thing, f"must be a finite number, got {value!r}")
    if not low <= number <= high:
        raise CardioInputError(thing, f"must be between {low:g} and {high:g}, got {number:g}")
    return number


def check_voxels(thing: str | Path, shape: Iterable[int], limit: int = MAX_VOLUME_VOXELS) -> int:
    """Voxels of ``shape`` (Python ints: no overflow), or one error when over ``limit``."""
    dims = [int(v) for v in shape]
    total = math.prod(dims)
    if any(v < 1 for v in dims):
        raise CardioInputError(thing, f"dimensions {tuple(dims)} must all be at least 1")
    if total > limit:
        shown = " x ".join(str(v) for v in dims)
        raise CardioInputError(thing, f"{shown} = {total:,} voxels is over the limit of {limit:,}")
    return total


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def check_threads(value: int | None, thing: str = "--threads") -> int | None:
    """None (the default) or 1..the CPUs available; more threads than CPUs only thrash."""
    if value is None:
        return None
    return check_count(thing, value, 1, available_cpus())


def check_text(thing: str, value: Any, limit: int = MAX_STRING) -> str:
    """A string of at most ``limit`` characters, or one error."""
    if not isinstance(value, str):
        raise CardioInputError(thing, f"must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise CardioInputError(thing, f"text of {len(value):,} characters; at most {limit:,}")
    return value


def check_json_depth(thing: str | Path, value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                raise CardioInputError(thing, f"JSON nested deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def check_file_size(path: str | Path, limit: int = MAX_TEXT_FILE_BYTES) -> None:
    """Refuse a file larger than ``limit`` bytes before reading it."""
    try:
        size = Path(path).stat().st_size
    except OSError as error:
        raise CardioInputError(path, f"cannot read ({type(error).__name__})") from None
    if size > limit:
        raise CardioInputError(path, f"file of {size:,} bytes; at most {limit:,} are read")


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def load_json(thing: str | Path, text: str | bytes) -> Any:
    """Parse strict JSON (no NaN or Infinity) no deeper than MAX_JSON_DEPTH, or one error."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise CardioInputError(thing, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CardioInputError(thing, f"not valid JSON ({error})") from None
    check_json_depth(thing, value)
    return value
