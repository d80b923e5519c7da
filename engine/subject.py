"""A subject: identity, diagnostic group, clinical conditions and its labelled frames."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.safe_paths import check_safe_id
from cardio_explorer.engine.limits import CONDITION_BOUNDS
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

GROUPS = ("NOR", "DCM", "HCM", "MINF", "ARV")
# The groups a NOR heart is morphed towards, in the order menus and reports list them.
PATHOLOGY_GROUPS = ("DCM", "HCM", "ARV", "MINF")
# The labelled cardiac phases: end-diastole and end-systole.
PHASES = ("ED", "ES")
# ACDC's Info.cfg writes abnormal RV as "RV".
ACDC_GROUP_NAMES = {"NOR": "NOR", "DCM": "DCM", "HCM": "HCM", "MINF": "MINF", "ARV": "RV"}

SEXES = ("F", "M")


def check_condition(name: str, value: float | None, where: str | Path) -> float | None:
    """``value`` (None passes) when inside CONDITION_BOUNDS, else one error naming ``where``."""
    low, high = CONDITION_BOUNDS[name]
    if value is not None and not (math.isfinite(value) and value > 0 and low <= value <= high):
        raise CardioInputError(where, f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


@dataclass(frozen=True)
class Conditions:
    """Clinical conditions: age (years), sex ('F'/'M'), height (cm), weight (kg), SBP (mmHg)."""

    age: float
    sex: str
    height: float
    weight: float
    sbp: float

    NUMERIC = ("age", "height", "weight", "sbp")

    def __post_init__(self) -> None:
        for name in self.NUMERIC:
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise CardioInputError(f"condition '{name}'", f"not a number: {value!r}") from None
            if not math.isfinite(number) or number <= 0:
                raise CardioInputError(
                    f"condition '{name}'", f"must be a positive number, got {value!r}"
                )
            check_condition(name, number, f"condition '{name}'")
            object.__setattr__(self, name, number)
        sex = str(self.sex).strip().upper()[:1] if self.sex is not None else ""
        if sex not in SEXES:
            raise CardioInputError("condition 'sex'", f"must be 'F' or 'M', got {self.sex!r}")
        object.__setattr__(self, "sex", sex)

    @property
    def bsa(self) -> float:
        """Body surface area in m2 (Mosteller)."""
        return math.sqrt(self.height * self.weight / 3600.0)

    @property
    def is_male(self) -> bool:
        """True for sex 'M'."""
        return self.sex == "M"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for CSV, JSON and sessions)."""
        return {
            "age": self.age,
            "sex": self.sex,
            "height": self.height,
            "weight": self.weight,
            "sbp": self.sbp,
        }


@dataclass(frozen=True)
class BodySize:
    """Height (cm) and weight (kg) alone: what ACDC's Info.cfg gives without other conditions."""

    height: float
    weight: float

    def __post_init__(self) -> None:
        for name in ("height", "weight"):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise CardioInputError(name, f"not a number: {value!r}") from None
            if not math.isfinite(number) or number <= 0:
                raise CardioInputError(name, f"must be a positive number, got {value!r}")
            object.__setattr__(self, name, check_condition(name, number, name))

    @property
    def bsa(self) -> float:
        """Body surface area in m2 (Mosteller)."""
        return math.sqrt(self.height * self.weight / 3600.0)

    @classmethod
    def of(cls, subject: Subject) -> BodySize | None:
        """From the conditions, or from height and weight in the subject's info; else None."""
        if subject.conditions is not None:
            return cls(subject.conditions.height, subject.conditions.weight)
        try:
            return cls(subject.info["height"], subject.info["weight"])
        except (KeyError, CardioInputError):
            return None


@dataclass(eq=False)
class Subject:
    """One subject of a cohort; ``labels``/``images`` map 0-based frame index to 3D volumes."""

    subject_id: str
    group: str | None = None
    conditions: Conditions | None = None
    ed_frame: int = 0
    es_frame: int | None = None
    n_frames: int = 1
    labels: dict[int, LabelVolume] = field(default_factory=dict)
    images: dict[int, ImageVolume] = field(default_factory=dict)
    source: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Ids come from file and folder names and CSVs, and name files downstream.
        check_safe_id(self.subject_id, self.source or "subject id")

    @property
    def ed_labels(self) -> LabelVolume:
        """Labels of the end-diastolic frame."""
        return self._frame_labels(self.ed_frame, "ED")

    @property
    def es_labels(self) -> LabelVolume:
        """Labels of the end-systolic frame."""
        if self.es_frame is None:
            raise CardioInputError(self.subject_id, "no end-systolic frame known")
        return self._frame_labels(self.es_frame, "ES")

    def _frame_labels(self, frame: int, phase: str) -> LabelVolume:
        if frame not in self.labels:
            raise CardioInputError(self.subject_id, f"no labels for the {phase} frame {frame}")
        return self.labels[frame]
