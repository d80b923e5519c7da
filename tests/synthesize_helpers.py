"""Running ``synthesize`` in-process and reading its manifest, shared by the synthesize tests."""

from __future__ import annotations

import csv
from pathlib import Path

from cardio_explorer.app.cli import main


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a manifest.csv as dicts."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def synthesize_sequences(cheart: Path, out: Path, *extra: str) -> int:
    """``synthesize`` of CHeart sequences on the CPU without a progress bar; the exit code."""
    argv = ["synthesize", "--cheart-checkpoint", str(cheart), "--out", str(out)]
    return main([*argv, "--device", "cpu", "--no-progress", *extra])
