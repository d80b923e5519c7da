"""Writing cases: NIfTI files (gzip) in a pool of worker processes, manifest rows as cases finish.

Every file is written under a temporary name and renamed, so no partial file is ever visible. A
case's manifest row is appended to its rank's part log (``.parts/``) only once all its files
are in place, so a re-run knows exactly which cases are done. The part logs merge, in case
order and with bounded memory, into ``manifest.csv`` at the end.
"""

from __future__ import annotations

import csv
import heapq
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardio_explorer.engine.factory.cases import Case
from cardio_explorer.engine.factory.layouts import case_files, case_folders, write_case_info
from cardio_explorer.engine.factory.morphs import MANIFEST_PHENOTYPES
from cardio_explorer.engine.io.atomic import atomic_write
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume
from cardio_explorer.engine.processes import die_with_parent

PARTS = ".parts"
MANIFEST_COLUMNS = (
    "case_index",
    "case",
    "subject",
    "group",
    "seed",
    "alpha",
    "correlated",
    "style",
    "style_seed",
    "file_ed",
    "file_es",
    "image_ed",
    "image_es",
    *MANIFEST_PHENOTYPES,
    "meets_group_rule",
    "label_values",
    "precision",
    "plan_sha256",
    "label_vae_sha256",
    "spade_sha256",
)
# (relative path, 'label' | 'image', volume)
FileTask = tuple[str, str, Any]


@dataclass(frozen=True, eq=False)
class WrittenCase:
    """A computed case as the writer takes it: its files, manifest row and folders."""

    index: int
    tasks: list[FileTask]
    row: dict[str, Any]
    folders: list[str] = field(default_factory=list)
    beside: Callable[[Path], object] | None = None  # small files written here (Info.cfg)


def _write_files(folder: Path, tasks: list[FileTask], acdc_values: bool) -> None:
    """Write one case's files (runs in a worker process)."""
    for relative, kind, volume in tasks:
        path = folder / relative
        if kind == "label":
            write_label_volume(volume, path, acdc_labels=acdc_values)
        else:
            write_image_volume(volume, path, quantise=True)


def morph_case(case: Case, layout: str, images: bool, common: dict[str, Any]) -> WrittenCase:
    """A morph case's files, manifest row, folders and (ACDC layout) Info.cfg."""
    tasks: list[FileTask] = []
    columns = {"file_ed": "", "file_es": "", "image_ed": "", "image_es": ""}
    for phase, labels in case.labels.items():
        files = case_files(layout, case.job.stem, phase, images)
        tasks.append((files["label"], "label", labels))
        columns[f"file_{phase.lower()}"] = files["label"]
        if "image" in files:
            tasks.append((files["image"], "image", case.images[phase]))
            columns[f"image_{phase.lower()}"] = files["image"]
    beside = None
    known = case.conditions or case.body
    if layout == "acdc" and known is not None:
        job = case.job
        beside = lambda folder: write_case_info(folder, job.stem, job.group, known)  # noqa: E731
    return WrittenCase(
        case.index,
        tasks,
        manifest_row(case, columns, common),
        case_folders(layout, case.job.stem),
        beside,
    )


def manifest_row(case: Case, files: dict[str, str], common: dict[str, Any]) -> dict[str, Any]:
    """A case's manifest row; ``common`` holds the plan-wide columns (hashes, precision)."""
    job = case.job
    row: dict[str, Any] = {
        "case_index": case.index,
        "case": job.stem,
        "subject": job.subject_id,
        "group": job.group,
        "seed": job.seed,
        "alpha": job.alpha,
        "correlated": job.correlated,
        "style_seed": "" if case.style_seed is None else case.style_seed,
        **files,
    }
    values = case.phenotypes.as_dict()
    row.update({name: round(float(values[name]), 3) for name in MANIFEST_PHENOTYPES})
    row["meets_group_rule"] = case.meets_group_rule
    row.update(common)
    return row


class CaseWriter:
    """Writes cases' files (in ``workers`` processes; 0 writes here) and logs their rows.

    At most ``2 x workers`` cases wait to be written, so memory stays bounded; rows are logged
    in submission order.
    """

    def __init__(
        self,
        folder: Path,
        part: Path,
        *,
        columns: tuple[str, ...],
        acdc_values: bool,
        workers: int = 1,
    ) -> None:
        self.folder, self.acdc_values, self.workers = folder, acdc_values, workers
        self.pool = (
            ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),))
            if workers > 0
            else None
        )
        self.pending: deque[tuple[Future | None, dict[str, Any]]] = deque()
        new = not part.exists() or part.stat().st_size == 0
        self.log = part.open("a", newline="", encoding="utf-8")
        self.csv = csv.DictWriter(self.log, fieldnames=columns)
        if new:
            self.csv.writeheader()
            self.log.flush()
        self.written = 0
        self.files = 0  # files queued (all written once ``finish`` returns)

    def submit(self, case: WrittenCase) -> int:
        """Queue a case; returns how many cases finished meanwhile."""
        for name in case.folders:
            (self.folder / name).mkdir(exist_ok=True)
        if case.beside is not None:
            case.beside(self.folder)
        tasks, row = case.tasks, case.row
        self.files += len(tasks)
        if self.pool is None:
            _write_files(self.folder, tasks, self.acdc_values)
            self.pending.append((None, row))
        else:
            future = self.pool.submit(_write_files, self.folder, tasks, self.acdc_values)
            self.pending.append((future, row))
        return self._drain(2 * max(self.workers, 1))

    def _drain(self, keep: int) -> int:
        done = 0
        while len(self.pending) > keep or (self.pending and self.pending[0][0] is None):
            future, row = self.pending.popleft()
            if future is not None:
                future.result()
            self.csv.writerow(row)
            self.log.flush()
            done += 1
        self.written += done
        return done

    def _log_finished(self) -> None:
        """Log the cases whose files are already whole (in order), so a stop loses none."""
        while self.pending:
            future, row = self.pending[0]
            if future is not None and not (future.done() and future.exception() is None):
                break
            self.pending.popleft()
            self.csv.writerow(row)
            self.written += 1
        self.log.flush()

    def finish(self) -> int:
        """Wait for every queued case; returns how many finished."""
        return self._drain(0)

    def close(self, cancel: bool = False) -> None:
        """Stop the pool (cancelling queued writes when ``cancel``) and close the log."""
        if cancel:
            self._log_finished()
        if self.pool is not None:
            if cancel:
                # SIGTERM must end us within seconds: stop the workers mid-file (their
                # temporary files are removed below)
                for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                    process.terminate()
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.log.close()
        if cancel:
            remove_temporaries(self.folder)


def remove_temporaries(folder: Path) -> None:
    """Remove the temporary files of writes that a stop cut short (hidden '.NAME.xxxx')."""
    for path in [folder, *(p for p in folder.iterdir() if p.is_dir())]:
        for tmp in path.glob(".*.nii*"):
            tmp.unlink(missing_ok=True)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    """Complete rows of a part log or manifest (a line cut short by a kill is skipped)."""
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if None in row or any(v is None for v in row.values()):
                continue
            try:
                row["case_index"] = int(row["case_index"])
            except (KeyError, ValueError):
                continue
            yield row


def row_sources(folder: Path) -> list[Path]:
    """Every manifest and part log of a dataset folder."""
    parts = folder / PARTS
    logs = sorted(parts.glob("*.csv")) if parts.is_dir() else []
    return [*sorted(folder.glob("manifest*.csv")), *logs]


def done_cases(folder: Path, n_cases: int) -> bytearray:
    """One byte per case of the plan: 1 where a manifest or part log lists it as written."""
    done = bytearray(n_cases)
    for source in row_sources(folder):
        for row in _rows(source):
            if 0 <= row["case_index"] < n_cases:
                done[row["case_index"]] = 1
    return done


def merged_rows(sources: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Rows of several sources (each in case order) in case order, each case once."""
    last = None
    streams = [_rows(path) for path in sources]
    for row in heapq.merge(*streams, key=lambda r: r["case_index"]):
        if row["case_index"] != last:
            last = row["case_index"]
            yield row


def write_manifest(
    path: Path, rows: Iterable[dict[str, Any]], columns: tuple[str, ...] = MANIFEST_COLUMNS
) -> int:
    """Write a manifest CSV atomically from a stream of rows; returns the number of rows."""
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
                count += 1

    atomic_write(path, write)
    return count
