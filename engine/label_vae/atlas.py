"""Latent atlas: per-group statistics of 32-slice latent stacks, and the NOR subjects to morph.

Every slice of every subject is encoded to its posterior mean at ED and ES; each subject's stack
of codes is interpolated along the slice axis to 32 slices (cubic; linear or nearest for stacks
of 1-3 slices, which are kept, not dropped). Per group and phase the atlas stores the element-wise
mean, std, min and max (32 x nz) and the Kendall correlation between latent dimensions; per NOR
subject it stores its 32 x nz codes and the geometry that lets a decoded stack span the subject's
own extent. The whole atlas round-trips through compact JSON so it fits in a checkpoint header.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.safe_paths import check_safe_id
from cardio_explorer.engine.subject import GROUPS, PHASES, BodySize, Conditions

ATLAS_SLICES = 32
ATLAS_FORMAT_VERSION = 1
REFERENCE_GROUP = "NOR"
# Decimals kept in JSON: codes and statistics to 1e-5, correlations to 1e-4.
_CODE_DECIMALS = 5
_CORR_DECIMALS = 4


@dataclass(frozen=True, eq=False)
class GroupStats:
    """Element-wise statistics of one group's 32 x nz latent stacks at one phase."""

    group: str
    phase: str
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    n_subjects: int
    dim_kendall: np.ndarray  # nz x nz Kendall tau between latent dimensions
    # Mean stack extent (mm between first and last slice centres): the length 32 codes span.
    extent_mm: float | None = None


@dataclass(frozen=True, eq=False)
class StackGeometry:
    """Where a subject's preprocessed stack lies: its affine and its number of slices."""

    affine: np.ndarray
    n_slices: int

    @property
    def extent_mm(self) -> float:
        """Distance between the first and last slice centres (0 for a single slice)."""
        return float(np.linalg.norm(np.asarray(self.affine)[:3, 2]) * (self.n_slices - 1))

    def resampled_affine(self, n_out: int) -> np.ndarray:
        """Affine of ``n_out`` slices whose first and last centres are the original ones.

        A single-slice stack has no extent between centres, so its slab is split instead.
        """
        affine = np.array(self.affine, dtype=np.float64)
        z_axis = affine[:3, 2].copy()
        if self.n_slices > 1:
            affine[:3, 2] = z_axis * (self.n_slices - 1) / max(n_out - 1, 1)
        else:
            affine[:3, 2] = z_axis / n_out
            affine[:3, 3] -= z_axis * (0.5 - 0.5 / n_out)
        return affine


@dataclass(frozen=True, eq=False)
class ReferenceSubject:
    """A subject encoded for morphing: 32 x nz codes and geometry per phase, its conditions."""

    subject_id: str
    group: str | None
    codes: dict[str, np.ndarray]
    geometry: dict[str, StackGeometry]
    conditions: Conditions | None = None
    # Height and weight when known, even without the other conditions (ACDC gives only those
    # two): the group rules index volumes by the BSA, and ACDC-layout Info.cfg files need them.
    body: BodySize | None = None

    @property
    def bsa_m2(self) -> float | None:
        """Body surface area (m2) when height and weight are known."""
        return None if self.body is None else self.body.bsa

    def phase_codes(self, phase: str) -> np.ndarray:
        """The 32 x nz codes of one phase (clear error when the phase was not encoded)."""
        _check_phase(phase)
        if phase not in self.codes:
            raise CardioInputError(f"subject {self.subject_id}", f"has no {phase} codes")
        return self.codes[phase]


class InterpolatedCodes(NamedTuple):
    """Codes resampled along the slice axis and the method used ('cubic', 'linear', 'nearest')."""

    codes: np.ndarray
    method: str


@dataclass(frozen=True, eq=False)
class LatentAtlas:
    """Group statistics per (group, phase) and the NOR reference subjects, for one label VAE."""

    nz: int
    n_slices: int
    stats: dict[tuple[str, str], GroupStats]
    references: dict[str, ReferenceSubject]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def groups(self) -> tuple[str, ...]:
        """Groups with statistics, in GROUPS order."""
        present = {g for g, _ in self.stats}
        return tuple(g for g in GROUPS if g in present)

    @property
    def reference_ids(self) -> tuple[str, ...]:
        """Ids of the subjects that can be morphed, sorted."""
        return tuple(sorted(self.references))

    def group_stats(self, group: str, phase: str) -> GroupStats:
        """Statistics of one group at one phase; clear error when the atlas lacks them."""
        _check_phase(phase)
        if (group, phase) not in self.stats:
            raise CardioInputError(
                f"target group {group!r}",
                f"not in the latent atlas at {phase} (it has {list(self.groups)})",
            )
        return self.stats[(group, phase)]

    def reference(self, subject_id: str) -> ReferenceSubject:
        """A reference subject by id; clear error for an unknown one."""
        if subject_id not in self.references:
            shown = ", ".join(self.reference_ids[:5])
            raise CardioInputError(
                f"subject {subject_id!r}",
                f"not among the atlas's {len(self.references)} reference subjects ({shown}...)",
            )
        return self.references[subject_id]

    def with_references(self, references: Sequence[ReferenceSubject]) -> LatentAtlas:
        """The same statistics with other morph sources (e.g. held-out or user subjects)."""
        for ref in references:
            for phase, codes in ref.codes.items():
                if codes.shape != (self.n_slices, self.nz):
                    raise CardioInputError(
                        f"subject {ref.subject_id}",
                        f"{phase} codes have shape {codes.shape}, "
                        f"atlas needs {(self.n_slices, self.nz)}",
                    )
        return replace(self, references={r.subject_id: r for r in references})

    # JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict with rounded floats (NaN written as null)."""
        groups: dict[str, dict[str, Any]] = {}
        for (group, phase), s in self.stats.items():
            groups.setdefault(group, {})[phase] = {
                "n_subjects": s.n_subjects,
                "mean": _rounded(s.mean, _CODE_DECIMALS),
                "std": _rounded(s.std, _CODE_DECIMALS),
                "min": _rounded(s.min, _CODE_DECIMALS),
                "max": _rounded(s.max, _CODE_DECIMALS),
                "dim_kendall": _rounded(s.dim_kendall, _CORR_DECIMALS),
                "extent_mm": None if s.extent_mm is None else round(s.extent_mm, 3),
            }
        references = [
            {
                "id": ref.subject_id,
                "group": ref.group,
                "conditions": ref.conditions.as_dict() if ref.conditions else None,
                "body": None if ref.body is None else [ref.body.height, ref.body.weight],
                "phases": {
                    phase: {
                        "codes": _rounded(ref.codes[phase], _CODE_DECIMALS),
                        "affine": _rounded(ref.geometry[phase].affine, 6),
                        "n_slices": ref.geometry[phase].n_slices,
                    }
                    for phase in ref.codes
                },
            }
            for ref in self.references.values()
        ]
        return {
            "version": ATLAS_FORMAT_VERSION,
            "nz": self.nz,
            "n_slices": self.n_slices,
            "groups": groups,
            "references": references,
            "info": self.info,
        }

    def to_json(self) -> str:
        """Compact JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatentAtlas:
        """Inverse of :meth:`to_dict`; a clear error for a malformed or foreign atlas."""
        try:
            if data.get("version") != ATLAS_FORMAT_VERSION:
                raise CardioInputError(
                    "latent atlas", f"format version {data.get('version')} is not supported"
                )
            nz, n_slices = int(data["nz"]), int(data["n_slices"])
            stats = {}
            for group, phases in data["groups"].items():
                for phase, s in phases.items():
                    stats[(group, phase)] = GroupStats(
                        group=group,
                        phase=phase,
                        mean=_array(s["mean"]),
                        std=_array(s["std"]),
                        min=_array(s["min"]),
                        max=_array(s["max"]),
                        n_subjects=int(s["n_subjects"]),
                        dim_kendall=_array(s["dim_kendall"]),
                        extent_mm=_optional_float(s.get("extent_mm")),
                    )
            references = {}
            for r in data["references"]:
                phases = r["phases"]
                references[r["id"]] = ReferenceSubject(
                    subject_id=check_safe_id(r["id"], "reference subject id"),
                    group=r.get("group"),
                    codes={p: _array(v["codes"]) for p, v in phases.items()},
                    geometry={
                        p: StackGeometry(_array(v["affine"]), int(v["n_slices"]))
                        for p, v in phases.items()
                    },
                    conditions=Conditions(**r["conditions"]) if r.get("conditions") else None,
                    body=BodySize(*r["body"]) if r.get("body") else None,
                )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if isinstance(error, CardioInputError):
                raise
            raise CardioInputError("latent atlas", f"malformed ({error!r})") from None
        for s in stats.values():
            if s.mean.shape != (n_slices, nz) or s.dim_kendall.shape != (nz, nz):
                raise CardioInputError(
                    "latent atlas", f"{s.group} {s.phase} statistics have the wrong shape"
                )
        return cls(
            nz=nz,
            n_slices=n_slices,
            stats=stats,
            references=references,
            info=dict(data.get("info", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> LatentAtlas:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise CardioInputError("latent atlas", f"not valid JSON ({error})") from None
        return cls.from_dict(data)


def _rounded(array: np.ndarray, decimals: int) -> list:
    values = np.round(np.asarray(array, dtype=np.float64), decimals)
    out = values.astype(object)
    out[~np.isfinite(values)] = None
    return out.tolist()


def _optional_float(value: Any) -> float | None:
    """A positive finite number from JSON, or None (absent in atlases written before it)."""
    if value is None:
        return None
    number = float(value)
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{value!r} is not a positive number")
    return number


def _array(values: list) -> np.ndarray:
    return np.array(values, dtype=np.float64)  # None (JSON null) becomes NaN


def _check_phase(phase: str) -> None:
    if phase not in PHASES:
        raise CardioInputError("phase", f"must be one of {PHASES}, got {phase!r}")


# checkpoint -------------------------------------------------------------------------------------
# Key of the atlas in a label VAE checkpoint's extra JSON (engine/label_vae/training.py writes it).
ATLAS_EXTRA_KEY = "atlas"


def atlas_extra(atlas: LatentAtlas) -> dict[str, Any]:
    """The entry to merge into a checkpoint's ``extra``: {'atlas': atlas.to_dict()}."""
    return {ATLAS_EXTRA_KEY: atlas.to_dict()}


def atlas_from_extra(extra: dict[str, Any], source: str | Path = "checkpoint") -> LatentAtlas:
    """The latent atlas stored in a checkpoint's extra JSON; a clear error when it has none."""
    if ATLAS_EXTRA_KEY not in extra:
        raise CardioInputError(
            source,
            "label VAE checkpoint holds no latent atlas; retrain it with "
            "`cardio-explorer train label-vae`, which builds the atlas after training",
        )
    try:
        return LatentAtlas.from_dict(extra[ATLAS_EXTRA_KEY])
    except CardioInputError as error:
        raise CardioInputError(source, error.problem) from None
