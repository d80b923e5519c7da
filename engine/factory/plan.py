"""A synthesis plan: what to write (morphs, images, layout), read from flags or a TOML file.

A plan names reference subjects x target groups x seeds x alphas. It is resolved against the
label VAE's latent atlas (``resolve``) before any work, so a bad plan costs nothing and gives
one clear error. Cases are never listed: case ``i`` is decoded from its index (subject, group,
seed, alpha in that order, alpha fastest), so memory stays bounded whatever the plan's size.

A *unit* is the alphas of one (subject, group, seed): they share one target sample and one
decoder batch, and ranks and shards split the plan by unit.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.morphs import (
    DEFAULT_ALPHAS,
    SynthesisJob,
    check_alphas,
    check_groups,
    check_phases,
    check_plan_size,
    check_seeds,
    check_subjects,
)
from cardio_explorer.engine.label_vae.atlas import LatentAtlas
from cardio_explorer.engine.limits import MAX_SEED, MAX_SEEDS

LAYOUTS = ("flat", "nnunet", "acdc")
LABEL_VALUES = ("acdc", "app")
STYLES = ("seed", "reference")
DEFAULT_SEEDS = "0-19"
# TOML sections and the plan fields each holds (a plan file mirrors the flags).
SECTIONS = {
    "morphs": ("groups", "subjects", "seeds", "alphas", "correlated", "phases"),
    "output": ("layout", "images", "labels", "style"),
}


def parse_seed_spec(text: str, thing: str = "seeds") -> tuple[int, ...]:
    """'0-19' (inclusive), '0,3,5' or a mix ('0-4,10') -> seeds, in the order given."""
    ranges: list[range] = []
    for item in str(text).split(","):
        item = item.strip()
        first, dash, last = item.partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise CardioInputError(thing, f"{item!r} is not a seed or a range like 0-19") from None
        if low < 0 or high < low:
            raise CardioInputError(thing, f"{item!r}: need 0 <= first <= last")
        if high > MAX_SEED:
            raise CardioInputError(thing, f"{item!r}: seeds go up to {MAX_SEED}")
        ranges.append(range(low, high + 1))
    # Counted before any list is built: '0-1000000000' is refused at once.
    count = sum(len(r) for r in ranges)
    if count > MAX_SEEDS:
        raise CardioInputError(thing, f"{count:,} seeds; at most {MAX_SEEDS:,} per run")
    return tuple(seed for r in ranges for seed in r)


@dataclass(frozen=True)
class Plan:
    """What a synthesize run writes. groups/subjects None: all the atlas has."""

    groups: tuple[str, ...] | None = None
    subjects: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = field(default_factory=lambda: parse_seed_spec(DEFAULT_SEEDS))
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    correlated: bool = True
    phases: tuple[str, ...] = ("ED", "ES")
    layout: str = "flat"
    images: bool = False
    labels: str = "acdc"
    style: str = "seed"  # SPADE style: "seed" (from the plan) or "reference" (own image)

    def resolve(self, atlas: LatentAtlas) -> ResolvedPlan:
        """Check every field against the atlas; one clear error, before any work."""
        groups = tuple(check_groups(atlas, self.groups))
        subjects = tuple(check_subjects(atlas, self.subjects))
        seeds = tuple(check_seeds(self.seeds))
        alphas = tuple(check_alphas(self.alphas))
        phases = check_phases(self.phases)
        if self.layout not in LAYOUTS:
            raise CardioInputError("layout", f"must be one of {LAYOUTS}, got {self.layout!r}")
        if self.labels not in LABEL_VALUES:
            raise CardioInputError("labels", f"must be one of {LABEL_VALUES}, got {self.labels!r}")
        if self.style not in STYLES:
            raise CardioInputError("style", f"must be one of {STYLES}, got {self.style!r}")
        if self.style == "reference" and not self.images:
            raise CardioInputError("style", "reference styles the images: add --images")
        if self.layout == "nnunet" and not self.images:
            raise CardioInputError(
                "layout", "nnunet needs images (imagesTr); add --images or pick flat or acdc"
            )
        if self.layout == "acdc":
            bare = [
                s
                for s in subjects
                if atlas.reference(s).conditions is None and atlas.reference(s).body is None
            ]
            if bare:
                raise CardioInputError(
                    "layout",
                    f"acdc needs each subject's height and weight for Info.cfg; the atlas has "
                    f"none for {bare[0]}; pick flat or nnunet",
                )
        check_plan_size(len(subjects), len(groups), len(seeds), len(alphas))
        resolved = replace(
            self,
            groups=groups,
            subjects=subjects,
            seeds=seeds,
            alphas=alphas,
            phases=phases,
            correlated=bool(self.correlated),
            images=bool(self.images),
        )
        return ResolvedPlan(resolved)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Plan:
        """This plan with the fields given (not None) replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan checked against an atlas: concrete lists, a hash, and cases by index."""

    plan: Plan

    @property
    def n_units(self) -> int:
        """Number of (subject, group, seed) units."""
        p = self.plan
        return len(p.subjects) * len(p.groups) * len(p.seeds)  # type: ignore[arg-type]

    @property
    def n_cases(self) -> int:
        """Number of cases (morphs): units x alphas."""
        return self.n_units * len(self.plan.alphas)

    @property
    def sha256(self) -> str:
        """Hash of the plan's content (what decides the files), for provenance and resuming."""
        text = json.dumps(asdict(self.plan), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def unit(self, u: int) -> tuple[str, str, int]:
        """(subject, group, seed) of unit ``u``."""
        p = self.plan
        rest, seed_i = divmod(u, len(p.seeds))
        subject_i, group_i = divmod(rest, len(p.groups))  # type: ignore[arg-type]
        return p.subjects[subject_i], p.groups[group_i], p.seeds[seed_i]  # type: ignore[index]

    def case(self, i: int) -> SynthesisJob:
        """Case ``i`` (0-based) of the plan."""
        if not 0 <= i < self.n_cases:
            raise IndexError(i)
        u, a = divmod(i, len(self.plan.alphas))
        subject, group, seed = self.unit(u)
        return SynthesisJob(subject, group, seed, self.plan.alphas[a], self.plan.correlated)

    def units_of(self, rank: int, world: int) -> Iterator[int]:
        """The units rank ``rank`` (0-based) of ``world`` takes: every world-th from rank."""
        if world < 1 or not 0 <= rank < world:
            raise CardioInputError("rank", f"needs 0 <= RANK < WORLD_SIZE, got {rank}/{world}")
        return iter(range(rank, self.n_units, world))

    def style_seed(self, u: int) -> int:
        """The SPADE style seed of unit ``u``: from the plan and the unit, never the worker.

        The alphas (and phases) of one unit share it, so a morph keeps one appearance."""
        digest = hashlib.sha256(f"{self.sha256}:{u}:style".encode()).digest()
        return int.from_bytes(digest[:4], "little")

    def to_toml(self) -> str:
        """The plan as a TOML file that ``--plan`` reads back to the same plan."""
        values = asdict(self.plan)
        lines = [f"# cardio-explorer synthesis plan ({self.n_cases:,} cases)"]
        for section, names in SECTIONS.items():
            lines.append(f"\n[{section}]")
            for name in names:
                value = values[name]
                if name == "seeds":
                    value = _seed_spec(value)
                lines.append(f"{name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _seed_spec(seeds: tuple[int, ...]) -> str:
    """Seeds as ranges: (0, 1, 2, 5) -> '0-2,5'."""
    parts: list[str] = []
    start = prev = None
    for seed in [*seeds, None]:
        if start is not None and (seed is None or seed != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if seed is not None and start is None:
            start = seed
        prev = seed
    return ",".join(parts)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def _typed(name: str, value: Any, where: str) -> Any:
    """A TOML value checked and converted to the plan field's type."""
    thing = f"{where}: {name}"
    if name in ("correlated", "images"):
        if not isinstance(value, bool):
            raise CardioInputError(thing, f"must be true or false, got {value!r}")
        return value
    if name in ("layout", "labels", "style"):
        if not isinstance(value, str):
            raise CardioInputError(thing, f"must be a string, got {value!r}")
        return value
    if name == "seeds":
        if isinstance(value, str):
            return parse_seed_spec(value, thing)
        if isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return tuple(value)
        raise CardioInputError(thing, "must be a list of whole numbers or a string like '0-19'")
    if name == "alphas":
        ok = isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        )
        if not ok:
            raise CardioInputError(thing, "must be a list of numbers in [0, 1]")
        return tuple(float(v) for v in value)
    if name == "subjects" and value == "all":
        return None
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise CardioInputError(thing, "must be a list of strings")
    return tuple(value)


def read_plan(path: str | Path) -> Plan:
    """A plan from a TOML file ([morphs] and [output] tables); one clear error for a bad one."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardioInputError(path, "plan file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CardioInputError(path, f"cannot read the plan ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise CardioInputError(path, f"not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise CardioInputError(path, f"unknown table [{unknown[0]}]; expected {list(SECTIONS)}")
    values: dict[str, Any] = {}
    for section, names in SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise CardioInputError(path, f"[{section}] must be a table")
        extra = sorted(set(table) - set(names))
        if extra:
            raise CardioInputError(
                f"{path} [{section}]", f"unknown key {extra[0]!r}; expected one of {list(names)}"
            )
        for name, value in table.items():
            values[name] = _typed(name, value, f"{path} [{section}]")
    known = {f.name for f in fields(Plan)}
    return Plan(**{k: v for k, v in values.items() if k in known})
