"""Generates a whole synthetic cohort into a folder, atomically, optionally on several processes.

Everything is written into a hidden sibling folder that is renamed into place at the end, so an
interrupted or failed run leaves nothing half-written behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cardio_explorer import __version__
from cardio_explorer.engine.cohort.conditions import condition_stats
from cardio_explorer.engine.cohort.generate import (
    CohortConfig,
    assign_groups,
    subject_id,
    subject_seeds,
    synthesize_subject,
)
from cardio_explorer.engine.cohort.writer import manifest_row, write_manifest, write_subject
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.nifti import write_label_table
from cardio_explorer.engine.io.staging import staged_folder
from cardio_explorer.engine.labels import value_names
from cardio_explorer.engine.processes import die_with_parent

MANIFEST = "manifest.csv"
COHORT_JSON = "cohort.json"
LABEL_TABLE_FILE = "labels.txt"


@dataclass(frozen=True)
class CohortResult:
    """Where the cohort went and its manifest rows (one dict per subject, in id order)."""

    folder: Path
    rows: list[dict[str, Any]]


def _one(task: tuple[int, str, Any, CohortConfig, Path]) -> dict[str, Any]:
    index, group, seed, config, folder = task
    subject = synthesize_subject(subject_id(index, config.n), group, seed, config)
    write_subject(subject, folder)
    return manifest_row(subject)


def _run(tasks: list, workers: int) -> Iterator[dict[str, Any]]:
    """Manifest rows in task order, from this process or a pool of ``workers`` processes."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_one, tasks)
        return
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), initializer=die_with_parent, initargs=(os.getpid(),)
    )
    try:
        yield from pool.map(_one, tasks, chunksize=1)
    except BaseException:
        # Error or interrupt (SIGTERM must end us within seconds): stop the workers mid-subject
        # rather than wait for them; ProcessPoolExecutor offers no public way to.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        raise
    finally:
        # Drop queued subjects and wait for the workers to end, so that none writes into the
        # staging folder after it is removed.
        pool.shutdown(wait=True, cancel_futures=True)


def generate_cohort(
    config: CohortConfig,
    out: str | Path,
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = False,
    command: str | None = None,
) -> CohortResult:
    """Generate ``config.n`` subjects into ``out`` (ACDC layout + manifest.csv, labels.txt,
    cohort.json); the folder appears complete or not at all."""
    if workers < 1:
        raise CardioInputError("--workers", f"must be at least 1, got {workers}")
    out = Path(out).absolute()
    with staged_folder(out, overwrite) as staging:
        groups = assign_groups(config)
        seeds = subject_seeds(config)
        tasks = [(i, groups[i], seeds[i], config, staging) for i in range(config.n)]
        for group in set(groups):
            condition_stats(group)  # computed once here, inherited by forked workers
        running = _run(tasks, workers)
        try:
            results = running
            if progress:
                results = tqdm(running, total=config.n, desc="cohort", unit="subject")
            rows = list(results)
        finally:
            running.close()
        write_manifest(staging / MANIFEST, rows)
        write_label_table(staging / LABEL_TABLE_FILE, acdc_labels=True)
        _write_json(staging / COHORT_JSON, config, command)
    return CohortResult(folder=out, rows=rows)


def _write_json(path: Path, config: CohortConfig, command: str | None) -> None:
    info = asdict(config)
    info.update(
        version=__version__,
        generator="cardio_explorer.engine.cohort",
        label_values={str(v): name for v, name in value_names(acdc_labels=True).items()},
        command=command,
    )
    if config.geometry != "dense":
        info.pop("dense_shape")
        info.pop("dense_spacing")
    path.write_text(json.dumps(info, indent=2, allow_nan=False) + "\n", encoding="utf-8")
