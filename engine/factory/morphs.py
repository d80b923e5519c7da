"""Pathology-morph jobs: one (NOR reference subject, target group, seed, alpha), and their checks.

A job's files are named from ``SynthesisJob.stem``:
``<subject>_<group>_s<seed>_a<alpha x 100, 3 digits>``. ``plan_jobs`` lists a small plan's jobs
in the factory's fixed order (subject, group, seed, alpha); ``factory.plan`` decodes them by
index instead, for plans of any size.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.safe_paths import check_safe_id
from cardio_explorer.engine.label_vae.atlas import LatentAtlas
from cardio_explorer.engine.label_vae.morph import check_alpha
from cardio_explorer.engine.limits import MAX_PLAN_CASES
from cardio_explorer.engine.subject import ACDC_GROUP_NAMES, GROUPS, PATHOLOGY_GROUPS, PHASES

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_SEEDS = tuple(range(20))
MANIFEST_PHENOTYPES = ("lvedv_ml", "lvesv_ml", "lvef", "rvedv_ml", "rvef", "lvm_g", "max_wall_mm")
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


# planning -------------------------------------------------------------------------------------
def check_plan_size(n_subjects: int, n_groups: int, n_seeds: int, n_alphas: int) -> None:
    """Refuse a plan of more than MAX_PLAN_CASES morphs, naming each factor."""
    cases = n_subjects * n_groups * n_seeds * n_alphas
    if cases > MAX_PLAN_CASES:
        raise CardioInputError(
            "seeds",
            f"{n_subjects} subjects x {n_groups} groups x {n_seeds} seeds x "
            f"{n_alphas} alphas = {cases:,} morphs; at most {MAX_PLAN_CASES:,} per run",
        )


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
    group_list = check_groups(atlas, groups)
    subject_list = check_subjects(atlas, subjects)
    seed_list = check_seeds(seeds)
    alpha_list = check_alphas(alphas)
    check_plan_size(len(subject_list), len(group_list), len(seed_list), len(alpha_list))
    return [
        SynthesisJob(subject, group, seed, alpha, bool(correlated))
        for subject, group, seed, alpha in itertools.product(
            subject_list, group_list, seed_list, alpha_list
        )
    ]


def check_groups(atlas: LatentAtlas, groups: Sequence[str] | None) -> list[str]:
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


def check_subjects(atlas: LatentAtlas, subjects: Sequence[str] | None) -> list[str]:
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


def check_seeds(seeds: Sequence[int]) -> list[int]:
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


def check_alphas(alphas: Sequence[float]) -> list[float]:
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


# phases ---------------------------------------------------------------------------------------
def check_phases(phases: Sequence[str]) -> tuple[str, ...]:
    """The phases to write, in PHASES order; a clear error for anything but ED and ES."""
    chosen = tuple(str(p).strip().upper() for p in phases)
    bad = [p for p in chosen if p not in PHASES]
    if bad or not chosen:
        raise CardioInputError("phases", f"must be a non-empty subset of {PHASES}, got {phases!r}")
    return tuple(p for p in PHASES if p in chosen)
