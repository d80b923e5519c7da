"""Merging a dataset written as shards (``synthesize --shard K/N``) into one, as rank 0 does.

Each shard leaves ``manifest-K-of-N.csv`` and ``provenance-K-of-N.json``; once every shard's
folder is in one (or they shared one), ``merge_shards`` checks that all N shards of the folder's
plan are there, that together they hold every case once and that every file their rows name is
on disk, then writes ``manifest.csv``, ``provenance.json`` and (nnU-Net) ``dataset.json`` with
numTraining counted from the label files, and removes the shard files. Nothing is written when
a check fails.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.layouts import nnunet_training_count, write_nnunet_json
from cardio_explorer.engine.factory.run import STAMP_FILE
from cardio_explorer.engine.factory.writers import merged_rows, write_manifest
from cardio_explorer.engine.io.atomic import atomic_write_text

_SHARD = re.compile(r"manifest-(\d+)-of-(\d+)\.csv")
_FILE_COLUMNS = ("file_", "image_")  # manifest columns that name files (';' between several)


@dataclass(frozen=True)
class MergeResult:
    """What a merge wrote: the manifest, its cases, the shards, nnU-Net's numTraining."""

    manifest: Path
    n_cases: int
    n_shards: int
    n_training: int | None


def _shards(folder: Path) -> tuple[int, dict[int, Path]]:
    """(N, {K: manifest-K-of-N.csv}) of the folder; every K from 1 to N, one N."""
    found: dict[int, dict[int, Path]] = {}
    for path in folder.glob("manifest-*-of-*.csv"):
        match = _SHARD.fullmatch(path.name)
        if match:
            k, n = int(match[1]), int(match[2])
            found.setdefault(n, {})[k] = path
    if not found:
        merged = (folder / "manifest.csv").is_file()
        raise CardioInputError(
            folder,
            "no shard manifests (manifest-K-of-N.csv)"
            + (
                ": manifest.csv is here, merged already?"
                if merged
                else "; copy every shard's folder into this one first"
            ),
        )
    if len(found) > 1:
        raise CardioInputError(folder, f"shards of different splits here: of {sorted(found)}")
    ((n, manifests),) = found.items()
    missing = [k for k in range(1, n + 1) if k not in manifests]
    if missing:
        raise CardioInputError(
            folder,
            f"shard {missing[0]} of {n} is not here (no manifest-{missing[0]}-of-{n}.csv): "
            "finish it, or copy its folder in",
        )
    return n, manifests


def _records(folder: Path, n: int, sha256: str) -> list[dict[str, Any]]:
    """Every shard's provenance, each of the folder's plan."""
    records = []
    for k in range(1, n + 1):
        path = folder / f"provenance-{k}-of-{n}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CardioInputError(path, f"not found: copy shard {k}'s folder in whole") from None
        except (OSError, ValueError) as error:
            raise CardioInputError(path, f"cannot read it ({error})") from None
        if record.get("plan_sha256") != sha256:
            raise CardioInputError(path, "is of another plan than this folder's plan.toml")
        records.append(record)
    return records


def _checked(folder: Path, manifests: list[Path], n_cases: int | None) -> Iterator[dict]:
    """The shards' rows in case order; stops with an error on a missing file or case."""
    expected = 0
    for row in merged_rows(manifests):
        if row["case_index"] != expected:
            raise CardioInputError(folder, f"case {expected} is in no shard manifest")
        for name, value in row.items():
            if name.startswith(_FILE_COLUMNS) and value:
                for relative in value.split(";"):
                    if not (folder / relative).is_file():
                        raise CardioInputError(
                            folder / relative, f"named by case {row['case']} but not here"
                        )
        expected += 1
        yield row
    if n_cases is not None and expected != n_cases:
        raise CardioInputError(folder, f"the shards hold {expected} of {n_cases} cases")


def _columns(manifest: Path) -> tuple[str, ...]:
    with manifest.open(newline="", encoding="utf-8") as handle:
        return tuple(next(csv.reader(handle), ()))


def merge_shards(folder: str | Path) -> MergeResult:
    """Merge the shards in ``folder`` into one dataset; see the module docstring."""
    folder = Path(folder)
    stamp = folder / STAMP_FILE
    if not folder.is_dir():
        raise CardioInputError(folder, "folder not found")
    if not stamp.is_file():
        raise CardioInputError(folder, f"not a synthesize dataset (no {STAMP_FILE})")
    n, found = _shards(folder)
    records = _records(folder, n, stamp.read_text().strip())
    manifests = [found[k] for k in range(1, n + 1)]
    n_cases = records[0].get("n_cases")
    manifest = folder / "manifest.csv"
    count = write_manifest(manifest, _checked(folder, manifests, n_cases), _columns(manifests[0]))
    n_training = None
    if records[0].get("layout") == "nnunet":
        what = "cardiac cycle frames (CHeart)" if "conditions" in records[0] else None
        acdc = str(records[0].get("label_values", "")).startswith("ACDC")
        write_nnunet_json(folder, acdc, *([what] if what else []))
        n_training = nnunet_training_count(folder)
    record = {
        **records[0],
        "written_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "shard": [1, 1],
        "merged_shards": n,
        "n_jobs": count,
        "last_run_s": round(sum(float(r.get("last_run_s", 0.0)) for r in records), 2),
    }
    atomic_write_text(folder / "provenance.json", json.dumps(record, indent=2) + "\n")
    for k in range(1, n + 1):
        found[k].unlink()
        (folder / f"provenance-{k}-of-{n}.json").unlink()
    return MergeResult(manifest, count, n, n_training)
