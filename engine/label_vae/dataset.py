"""Whole labelled datasets from the pathology morph: plan jobs, split them into shards, run them.

A job is one (NOR reference subject, target group, seed, alpha). Running it decodes the morph at
ED and at ES with the same seed (so EF is meaningful), writes the requested phases as NIfTI label
maps named ``<subject>_<group>_s<seed>_a<alpha x 100, 3 digits>_<phase>_gt.nii.gz`` and measures
the phenotypes on both phases (ES is decoded for them even when only ED is written).

Jobs are planned in one fixed order (subject, group, seed, alpha) and shard k of n takes every
n-th job starting at the k-th, so n machines given the same arguments write disjoint files. Each
shard's manifest (``manifest-K-of-N.csv``) has the same header; the files concatenate, header
once, into the manifest of the whole dataset, and the shard folders merge by copying.
"""

from __future__ import annotations

import itertools
import json
import operator
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from cardio_explorer import __version__
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write_csv, atomic_write_text
from cardio_explorer.engine.io.nifti import write_label_table, write_label_volume
from cardio_explorer.engine.io.safe_paths import check_safe_id, child_path
from cardio_explorer.engine.io.staging import staged_folder
from cardio_explorer.engine.label_vae.atlas import LatentAtlas
from cardio_explorer.engine.label_vae.morph import PathologyMorph, check_alpha
from cardio_explorer.engine.labels import describe_values
from cardio_explorer.engine.limits import MAX_PLAN_CASES
from cardio_explorer.engine.metrics.diagnosis import meets_group_rule
from cardio_explorer.engine.metrics.phenotypes import Phenotypes, measure_phenotypes
from cardio_explorer.engine.subject import ACDC_GROUP_NAMES, GROUPS, PATHOLOGY_GROUPS, PHASES

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_SEEDS = tuple(range(20))
MANIFEST_PHENOTYPES = ("lvedv_ml", "lvesv_ml", "lvef", "rvedv_ml", "rvef", "lvm_g", "max_wall_mm")
MANIFEST_COLUMNS = (
    "subject",
    "group",
    "seed",
    "alpha",
    "correlated",
    "file_ed",
    "file_es",
    *MANIFEST_PHENOTYPES,
    "meets_group_rule",
)
LABEL_TABLE_FILE = "labels.txt"
_ALIASES = {acdc: ours for ours, acdc in ACDC_GROUP_NAMES.items()}  # ACDC writes ARV as "RV"


def alpha_tag(alpha: float) -> str:
    """Alpha in file names: percent as 3 digits (0.25 -> '025', 1 -> '100')."""
    return f"{round(float(alpha) * 100):03d}"


@dataclass(frozen=True)
class SynthesisJob:
    """One morph to write: a NOR reference subject towards a group, at one seed and alpha."""

    subject_id: str
    group: str
    seed: int
    alpha: float
    correlated: bool = True

    def __post_init__(self) -> None:
        check_safe_id(self.subject_id, "subject id")  # it names the job's files

    @property
    def stem(self) -> str:
        """File name stem shared by the job's phases."""
        return f"{self.subject_id}_{self.group}_s{self.seed}_a{alpha_tag(self.alpha)}"

    def file_name(self, phase: str) -> str:
        """Label map file name of one phase."""
        return f"{self.stem}_{phase}_gt.nii.gz"


@dataclass(frozen=True, eq=False)
class JobResult:
    """What a job wrote (phase -> path) and what its labels measure."""

    job: SynthesisJob
    files: dict[str, Path]
    phenotypes: Phenotypes
    meets_group_rule: bool

    def manifest_row(self) -> dict[str, Any]:
        """The job's manifest row; files by name, relative to the dataset folder."""
        job = self.job
        row: dict[str, Any] = {
            "subject": job.subject_id,
            "group": job.group,
            "seed": job.seed,
            "alpha": job.alpha,
            "correlated": job.correlated,
            "file_ed": self.files["ED"].name if "ED" in self.files else "",
            "file_es": self.files["ES"].name if "ES" in self.files else "",
        }
        values = self.phenotypes.as_dict()
        row.update({name: round(float(values[name]), 3) for name in MANIFEST_PHENOTYPES})
        row["meets_group_rule"] = self.meets_group_rule
        return row


@dataclass(frozen=True, eq=False)
class DatasetResult:
    """A written dataset: its folder, manifest, manifest rows, label files and time taken."""

    folder: Path
    manifest: Path
    rows: list[dict[str, Any]]
    n_files: int
    elapsed_s: float


# planning -------------------------------------------------------------------------------------
def plan_jobs(
    atlas: LatentAtlas,
    groups: Sequence[str] | None = None,
    subjects: Sequence[str] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    correlated: bool = True,
) -> list[SynthesisJob]:
    """Every (subject, group, seed, alpha) job in a fixed order; one clear error for a bad input.

    groups None: the atlas's pathology groups (DCM, HCM, ARV, MINF that it has); subjects None:
    all of its reference (NOR) subjects.
    """
    group_list = _check_groups(atlas, groups)
    subject_list = _check_subjects(atlas, subjects)
    seed_list = _check_seeds(seeds)
    alpha_list = _check_alphas(alphas)
    cases = len(subject_list) * len(group_list) * len(seed_list) * len(alpha_list)
    if cases > MAX_PLAN_CASES:
        raise CardioInputError(
            "seeds",
            f"{len(subject_list)} subjects x {len(group_list)} groups x {len(seed_list)} seeds x "
            f"{len(alpha_list)} alphas = {cases:,} morphs; at most {MAX_PLAN_CASES:,} per run",
        )
    return [
        SynthesisJob(subject, group, seed, alpha, bool(correlated))
        for subject, group, seed, alpha in itertools.product(
            subject_list, group_list, seed_list, alpha_list
        )
    ]


def shard(jobs: Sequence[SynthesisJob], k: int, n: int) -> list[SynthesisJob]:
    """Shard ``k`` of ``n`` (1-based): every n-th job from the k-th; the n shards partition jobs."""
    try:
        k, n = operator.index(k), operator.index(n)
    except TypeError:
        raise CardioInputError("shard", f"expected whole numbers K/N, got {k!r}/{n!r}") from None
    if n < 1 or not 1 <= k <= n:
        raise CardioInputError("shard", f"K/N needs 1 <= K <= N, got {k}/{n}")
    return list(jobs[k - 1 :: n])


def manifest_name(k: int = 1, n: int = 1) -> str:
    """manifest.csv for a whole dataset, manifest-K-of-N.csv for one shard of it."""
    return "manifest.csv" if n == 1 else f"manifest-{k}-of-{n}.csv"


def provenance_name(k: int = 1, n: int = 1) -> str:
    """provenance.json for a whole dataset, provenance-K-of-N.json for one shard of it."""
    return "provenance.json" if n == 1 else f"provenance-{k}-of-{n}.json"


def _check_groups(atlas: LatentAtlas, groups: Sequence[str] | None) -> list[str]:
    if groups is None:
        found = [g for g in PATHOLOGY_GROUPS if g in atlas.groups]
        if not found:
            raise CardioInputError(
                "groups", f"the latent atlas has no pathology group (it has {list(atlas.groups)})"
            )
        return found
    names = []
    for group in groups:
        name = str(group).strip().upper()
        name = _ALIASES.get(name, name)
        if name not in GROUPS:
            raise CardioInputError("groups", f"unknown group {group!r}; expected one of {GROUPS}")
        if name not in atlas.groups:
            raise CardioInputError(
                "groups", f"{name} is not in the latent atlas (it has {list(atlas.groups)})"
            )
        if name in names:
            raise CardioInputError("groups", f"{name} given twice")
        names.append(name)
    if not names:
        raise CardioInputError("groups", "no group given")
    return names


def _check_subjects(atlas: LatentAtlas, subjects: Sequence[str] | None) -> list[str]:
    known = atlas.reference_ids
    if not known:
        raise CardioInputError("subjects", "the latent atlas has no reference (NOR) subject")
    if subjects is None:
        return list(known)
    chosen = [str(s).strip() for s in subjects]
    unknown = [s for s in chosen if s not in atlas.references]
    if unknown:
        shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
        raise CardioInputError(
            "subjects",
            f"unknown id {unknown[0]!r}; the atlas's {len(known)} reference subjects are {shown}",
        )
    if len(set(chosen)) != len(chosen):
        raise CardioInputError("subjects", "an id is given twice")
    if not chosen:
        raise CardioInputError("subjects", "no subject given")
    return chosen


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    values = []
    for seed in seeds:
        try:
            value = operator.index(seed)
        except TypeError:
            value = -1
        if isinstance(seed, bool) or value < 0:
            raise CardioInputError("seeds", f"must be whole numbers >= 0, got {seed!r}")
        values.append(value)
    if not values:
        raise CardioInputError("seeds", "no seed given")
    if len(set(values)) != len(values):
        raise CardioInputError("seeds", "a seed is given twice")
    return values


def _check_alphas(alphas: Sequence[float]) -> list[float]:
    values = [check_alpha(a) for a in alphas]
    if not values:
        raise CardioInputError("alphas", "no alpha given")
    tags: dict[str, float] = {}
    for alpha in values:
        tag = alpha_tag(alpha)
        if tag in tags:
            raise CardioInputError(
                "alphas",
                f"{tags[tag]:g} and {alpha:g} share the file tag a{tag} (file names keep alpha "
                "to 0.01); give alphas at least 0.01 apart (at most 101 steps)",
            )
        tags[tag] = alpha
    return values


# running --------------------------------------------------------------------------------------
def check_phases(phases: Sequence[str]) -> tuple[str, ...]:
    """The phases to write, in PHASES order; a clear error for anything but ED and ES."""
    chosen = tuple(str(p).strip().upper() for p in phases)
    bad = [p for p in chosen if p not in PHASES]
    if bad or not chosen:
        raise CardioInputError("phases", f"must be a non-empty subset of {PHASES}, got {phases!r}")
    return tuple(p for p in PHASES if p in chosen)


def run_jobs(
    morph: PathologyMorph,
    jobs: Iterable[SynthesisJob],
    folder: str | Path,
    phases: Sequence[str] = PHASES,
    acdc_labels: bool = False,
) -> Iterator[JobResult]:
    """Run jobs in order, writing into ``folder``; consecutive jobs that differ only in alpha
    share one sample and one decoder batch per phase."""
    folder = Path(folder)
    phases = check_phases(phases)
    for (subject, group, seed, correlated), batch in itertools.groupby(
        jobs, key=lambda j: (j.subject_id, j.group, j.seed, j.correlated)
    ):
        batch = list(batch)
        alphas = [job.alpha for job in batch]
        decoded = {
            phase: morph.series(subject, group, phase, alphas, correlated, seed) for phase in PHASES
        }
        conditions = morph.atlas.reference(subject).conditions
        for i, job in enumerate(batch):
            ed, es = decoded["ED"][i].labels, decoded["ES"][i].labels
            files = {
                phase: write_label_volume(
                    decoded[phase][i].labels,
                    child_path(folder, job.file_name(phase)),
                    acdc_labels=acdc_labels,
                )
                for phase in phases
            }
            phenotypes = measure_phenotypes(ed, es)
            meets = meets_group_rule(group, phenotypes, conditions)
            yield JobResult(job, files, phenotypes, meets)


def run_job(
    morph: PathologyMorph,
    job: SynthesisJob,
    folder: str | Path,
    phases: Sequence[str] = PHASES,
    acdc_labels: bool = False,
) -> JobResult:
    """Run one job: write its phases into ``folder``, measure its phenotypes."""
    return next(run_jobs(morph, [job], folder, phases, acdc_labels))


def write_manifest(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write a manifest CSV (MANIFEST_COLUMNS) atomically."""
    return atomic_write_csv(path, MANIFEST_COLUMNS, rows)


def write_dataset(
    morph: PathologyMorph,
    jobs: Sequence[SynthesisJob],
    out: str | Path,
    *,
    phases: Sequence[str] = PHASES,
    acdc_labels: bool = False,
    overwrite: bool = False,
    shard_of: tuple[int, int] = (1, 1),
    progress: bool = False,
    provenance: dict[str, Any] | None = None,
) -> DatasetResult:
    """Run ``jobs`` into ``out`` with labels.txt, the manifest and a provenance JSON; ``out``
    appears whole or not at all. ``shard_of`` (k, n) only names the manifest and provenance
    (the jobs are already the shard's); ``provenance`` adds to what the engine records."""
    start = time.perf_counter()
    phases = check_phases(phases)
    rows = []
    with staged_folder(out, overwrite) as staging:
        with tqdm(total=len(jobs), desc="synthesize", unit="job", disable=not progress) as bar:
            for result in run_jobs(morph, jobs, staging, phases, acdc_labels):
                rows.append(result.manifest_row())
                bar.update(1)
        write_label_table(staging / LABEL_TABLE_FILE, acdc_labels=acdc_labels)
        write_manifest(staging / manifest_name(*shard_of), rows)
        record = {
            "software": f"cardio-explorer {__version__}",
            "written_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "shard": list(shard_of),
            "n_jobs": len(jobs),
            "phases": list(phases),
            "label_values": f"ACDC ({describe_values(True)})" if acdc_labels else describe_values(),
            "device": str(morph.device),
            **(provenance or {}),
        }
        atomic_write_text(
            staging / provenance_name(*shard_of),
            json.dumps(record, indent=2, allow_nan=False) + "\n",
        )
    folder = Path(out).absolute()
    return DatasetResult(
        folder=folder,
        manifest=folder / manifest_name(*shard_of),
        rows=rows,
        n_files=len(rows) * len(phases),
        elapsed_s=time.perf_counter() - start,
    )
