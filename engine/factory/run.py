"""Running a plan into a dataset folder: alone, as one shard, or as one rank of torchrun.

Rank 0 (or the only process) prepares the folder (checks it, or finds the same plan there to
resume), every rank writes the units ``ResolvedPlan.units_of(rank, world)`` gives it, skipping
finished cases, and rank 0 merges the part logs into ``manifest.csv`` and writes what the layout
needs beside the files (``dataset.json`` for nnU-Net, ``provenance.json``). A shard (``--shard
K/N`` without torchrun) is a rank that merges only its own log, into ``manifest-K-of-N.csv``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cardio_explorer import __version__
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.cases import ReferenceStyles, compute_unit
from cardio_explorer.engine.factory.layouts import write_nnunet_json, write_root_files
from cardio_explorer.engine.factory.plan import ResolvedPlan
from cardio_explorer.engine.factory.writers import (
    MANIFEST_COLUMNS,
    PARTS,
    CaseWriter,
    WrittenCase,
    done_cases,
    merged_rows,
    morph_case,
    remove_temporaries,
    row_sources,
    write_manifest,
)
from cardio_explorer.engine.io.atomic import atomic_write_text
from cardio_explorer.engine.io.staging import check_output_folder
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.spade.network import SpadeModel

LABEL_VALUE_NAMES = {"acdc": "ACDC (1 RV, 2 MYO, 3 LV)", "app": "1 LV, 2 MYO, 3 RV"}
PLAN_FILE = "plan.toml"
STAMP_FILE = ".plan-sha256"


@dataclass(frozen=True)
class Ranks:
    """Who this process is: rank (0-based) of world; ``shard`` when there is no torchrun.

    ``barrier`` and ``broadcast`` are torch.distributed's under torchrun, no-ops otherwise."""

    rank: int = 0
    world: int = 1
    shard: bool = False
    barrier: Callable[[], None] = field(default=lambda: None)
    broadcast: Callable[[Any], Any] = field(default=lambda value: value)

    @property
    def merges(self) -> bool:
        """Whether this process writes the manifest (rank 0, or every shard its own)."""
        return self.shard or self.rank == 0


@dataclass(frozen=True)
class RunResult:
    """What a run did: folder, manifest (None on ranks that do not merge), counts, time."""

    folder: Path
    manifest: Path | None
    n_written: int
    n_skipped: int
    n_cases: int
    elapsed_s: float
    n_files: int = 0  # files this process wrote


def manifest_name(ranks: Ranks) -> str:
    """manifest.csv for a whole dataset, manifest-K-of-N.csv for one shard of it."""
    return f"manifest-{ranks.rank + 1}-of-{ranks.world}.csv" if ranks.shard else "manifest.csv"


def provenance_name(ranks: Ranks) -> str:
    """provenance.json, or provenance-K-of-N.json for one shard."""
    k, n = ranks.rank + 1, ranks.world
    return f"provenance-{k}-of-{n}.json" if ranks.shard else "provenance.json"


def prepare_folder(out: Path, plan: Work, overwrite: bool) -> bool:
    """Make ``out`` ready; True when it holds the same plan (a run to resume).

    A folder written by another plan, or anything else non-empty, is refused unless
    ``overwrite``; refused before anything is written."""
    stamp = out / STAMP_FILE
    resume = stamp.is_file() and stamp.read_text().strip() == plan.sha256
    if resume and not overwrite:
        remove_temporaries(out)  # what a hard-killed run was writing
        return True
    if stamp.is_file() and not overwrite:
        raise CardioInputError(
            out, "holds a dataset of another plan; choose another folder or pass --overwrite"
        )
    check_output_folder(out, overwrite)
    if out.is_dir() and overwrite:
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(exist_ok=True)
    atomic_write_text(out / PLAN_FILE, plan.to_toml())
    atomic_write_text(stamp, plan.sha256 + "\n")
    return False


class Work(Protocol):
    """What a run writes: the cases of a resolved plan, by unit (morphs or sequences)."""

    sha256: str
    n_cases: int
    labels: str  # values on disk: "acdc" or "app"
    columns: tuple[str, ...]

    def to_toml(self) -> str:
        """The plan, as --plan reads it."""

    def units_of(self, rank: int, world: int) -> Iterator[int]:
        """Units of rank ``rank`` of ``world``."""

    def cases_of(self, unit: int) -> range:
        """Case indices of a unit."""

    def compute(self, unit: int, wanted: set[int]) -> list[WrittenCase]:
        """The wanted cases of a unit, ready to write."""

    def finish(self, out: Path, n_rows: int) -> None:
        """Files the layout needs beside the cases (nnU-Net's dataset.json)."""

    def record(self) -> dict[str, Any]:
        """The plan's fields for provenance.json."""


@dataclass(frozen=True, eq=False)
class MorphWork:
    """Pathology morphs (``ResolvedPlan``) as a run's work."""

    plan: ResolvedPlan
    morph: PathologyMorph
    spade: SpadeModel | None
    common: dict[str, Any]
    styles: ReferenceStyles | None = None

    @property
    def sha256(self) -> str:
        """The plan's hash."""
        return self.plan.sha256

    @property
    def n_cases(self) -> int:
        """Number of morphs."""
        return self.plan.n_cases

    @property
    def labels(self) -> str:
        """Label values on disk."""
        return self.plan.plan.labels

    columns = MANIFEST_COLUMNS

    def to_toml(self) -> str:
        """The plan as TOML."""
        return self.plan.to_toml()

    def units_of(self, rank: int, world: int) -> Iterator[int]:
        """Units of one rank."""
        return self.plan.units_of(rank, world)

    def cases_of(self, unit: int) -> range:
        """The alphas of a unit, as case indices."""
        n = len(self.plan.plan.alphas)
        return range(unit * n, (unit + 1) * n)

    def compute(self, unit: int, wanted: set[int]) -> list[WrittenCase]:
        """The wanted morphs of a unit, ready to write."""
        p = self.plan.plan
        return [
            morph_case(case, p.layout, p.images, self.common)
            for case in compute_unit(
                self.morph, self.spade, self.plan, unit, wanted, styles=self.styles
            )
        ]

    def finish(self, out: Path, n_rows: int) -> None:
        """nnU-Net's dataset.json when the layout needs it."""
        p = self.plan.plan
        if p.layout == "nnunet":
            write_nnunet_json(out, p.labels == "acdc")

    def record(self) -> dict[str, Any]:
        """The plan's fields for provenance.json."""
        p = self.plan.plan
        return {
            "groups": list(p.groups or ()),
            "subjects": list(p.subjects or ()),
            "seeds": list(p.seeds),
            "alphas": list(p.alphas),
            "correlated": p.correlated,
            "phases": list(p.phases),
            "layout": p.layout,
            "images": p.images,
        }


def morph_work(
    morph: PathologyMorph,
    spade: SpadeModel | None,
    plan: ResolvedPlan,
    provenance: dict[str, Any] | None = None,
    styles: ReferenceStyles | None = None,
) -> MorphWork:
    """The morph plan as work; ``provenance`` gives the per-row hashes and precision;
    ``styles``: images in each reference subject's own style (else from style seeds)."""
    p = plan.plan
    style = "" if not p.images else p.style
    common = {"label_values": p.labels, "plan_sha256": plan.sha256, "style": style}
    common.update(provenance or {})
    keys = ("style", "label_values", "precision", "plan_sha256", "label_vae_sha256")
    keys += ("spade_sha256",)
    return MorphWork(plan, morph, spade, {k: common.get(k, "") for k in keys}, styles)


def run_plan(
    morph: PathologyMorph,
    spade: SpadeModel | None,
    plan: ResolvedPlan,
    out: str | Path,
    *,
    provenance: dict[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """Write this process's share of a morph ``plan`` into ``out`` (see ``run_work``)."""
    work = morph_work(morph, spade, plan, provenance)
    return run_work(work, out, provenance=provenance, **options)


def run_work(
    work: Work,
    out: str | Path,
    *,
    ranks: Ranks = Ranks(),
    overwrite: bool = False,
    workers: int = 1,
    progress: bool = False,
    provenance: dict[str, Any] | None = None,
) -> RunResult:
    """Write this process's share of ``work`` into ``out``; see the module docstring."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    out = Path(out).absolute()
    error = None
    if ranks.merges:
        try:
            prepare_folder(out, work, overwrite)
            write_root_files(out, work.labels == "acdc")
            (out / PARTS).mkdir(exist_ok=True)
        except CardioInputError as failure:
            error = (str(failure.thing), failure.problem)
    error = ranks.broadcast(error)  # every rank stops on rank 0's refusal, none hangs
    if error is not None:
        raise CardioInputError(*error)
    ranks.barrier()
    done = done_cases(out, work.n_cases)
    units = list(work.units_of(ranks.rank, ranks.world))
    mine = sum(len(work.cases_of(u)) for u in units)
    skipped = sum(done[i] for u in units for i in work.cases_of(u))
    part = out / PARTS / f"rank-{ranks.rank}-of-{ranks.world}.csv"
    writer = CaseWriter(
        out, part, columns=work.columns, acdc_values=work.labels == "acdc", workers=workers
    )
    label = f"synthesize {ranks.rank + 1}/{ranks.world}" if ranks.world > 1 else "synthesize"
    bar = tqdm(total=mine, initial=skipped, desc=label, unit="case", disable=not progress)
    try:
        for unit in units:
            wanted = {i for i in work.cases_of(unit) if not done[i]}
            if not wanted:
                continue
            for case in work.compute(unit, wanted):
                bar.update(writer.submit(case))
        bar.update(writer.finish())
    except BaseException:
        writer.close(cancel=True)
        raise
    finally:
        bar.close()
    writer.close()
    ranks.barrier()
    manifest = None
    if ranks.merges:
        manifest = _merge(out, work, ranks, part, provenance or {}, time.perf_counter() - start)
    ranks.barrier()
    took = time.perf_counter() - start
    return RunResult(out, manifest, writer.written, skipped, mine, took, writer.files)


def _merge(
    out: Path, work: Work, ranks: Ranks, part: Path, extra: dict[str, Any], took: float
) -> Path:
    """Manifest, layout files and provenance; part logs removed once merged."""
    manifest = out / manifest_name(ranks)
    sources = [manifest, part] if ranks.shard else row_sources(out)
    sources = [s for s in sources if s.is_file()]
    n_rows = write_manifest(manifest, merged_rows(sources), work.columns)
    work.finish(out, n_rows)
    record = {
        "software": f"cardio-explorer {__version__}",
        "written_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "plan_sha256": work.sha256,
        "shard": [ranks.rank + 1, ranks.world] if ranks.shard else [1, 1],
        "world_size": 1 if ranks.shard else ranks.world,
        "n_jobs": n_rows,
        "n_cases": work.n_cases,  # of the whole plan: what merging shards checks
        **work.record(),
        "label_values": "ACDC (1 RV, 2 MYO, 3 LV)"
        if work.labels == "acdc"
        else "1 LV, 2 MYO, 3 RV",
        "last_run_s": round(took, 2),
        **extra,
    }
    atomic_write_text(
        out / provenance_name(ranks), json.dumps(record, indent=2, allow_nan=False) + "\n"
    )
    if ranks.shard:
        part.unlink(missing_ok=True)
        if not any((out / PARTS).iterdir()):
            (out / PARTS).rmdir()
    else:
        shutil.rmtree(out / PARTS, ignore_errors=True)
    return manifest
