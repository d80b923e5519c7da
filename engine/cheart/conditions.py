"""Clinical conditions as model input: parsing, normalisation and the training ranges.

The statistics (mean and standard deviation of age, height, weight and SBP; per-sex means for
defaults) and the ranges seen in training are stored in the checkpoint, so a model normalises
new conditions exactly as it was trained. Values outside the training range are accepted and
reported as warnings in the result; missing or non-numeric values are a CardioInputError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import SEXES, Conditions

NUMERIC = ("age", "height", "weight", "sbp")
UNITS = {"age": "years", "height": "cm", "weight": "kg", "sbp": "mmHg"}
CONDITION_NAMES = ("age", "sex", "height", "weight", "sbp")


def parse_conditions(values: Conditions | Mapping[str, Any]) -> Conditions:
    """Conditions from a Conditions or a mapping; a missing or non-numeric value is an error."""
    if isinstance(values, Conditions):
        return values
    if not isinstance(values, Mapping):
        raise CardioInputError("conditions", f"expected a mapping, got {type(values).__name__}")
    missing = [name for name in CONDITION_NAMES if values.get(name) in (None, "")]
    if missing:
        raise CardioInputError("conditions", f"missing {', '.join(missing)}")
    for name in NUMERIC:
        value = values[name]
        if isinstance(value, bool):
            raise CardioInputError(f"condition '{name}'", f"not a number: {value!r}")
    return Conditions(**{name: values[name] for name in CONDITION_NAMES})


@dataclass(frozen=True)
class ConditionStats:
    """Normalisation statistics and training ranges of the conditions."""

    mean: dict[str, float]
    std: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    sex_counts: dict[str, int] = field(default_factory=dict)
    sex_means: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_conditions(cls, conditions: Iterable[Conditions]) -> ConditionStats:
        """Statistics of a training set's conditions."""
        items = list(conditions)
        if not items:
            raise CardioInputError("training set", "no subjects with conditions")
        table = {n: np.array([getattr(c, n) for c in items], dtype=np.float64) for n in NUMERIC}
        sexes = np.array([c.sex for c in items])
        sex_means = {
            s: {n: float(table[n][sexes == s].mean()) for n in NUMERIC}
            for s in SEXES
            if np.any(sexes == s)
        }
        return cls(
            mean={n: float(v.mean()) for n, v in table.items()},
            # A floor keeps a constant condition (e.g. all one age) from dividing by zero.
            std={n: max(float(v.std()), 1e-3) for n, v in table.items()},
            low={n: float(v.min()) for n, v in table.items()},
            high={n: float(v.max()) for n, v in table.items()},
            sex_counts={s: int(np.sum(sexes == s)) for s in SEXES},
            sex_means=sex_means,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form stored in the checkpoint's extra."""
        return {
            "mean": self.mean,
            "std": self.std,
            "low": self.low,
            "high": self.high,
            "sex_counts": self.sex_counts,
            "sex_means": self.sex_means,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConditionStats:
        """Inverse of :meth:`to_dict`; a clear error when the checkpoint lacks a field."""
        try:
            stats = cls(
                mean={n: float(data["mean"][n]) for n in NUMERIC},
                std={n: float(data["std"][n]) for n in NUMERIC},
                low={n: float(data["low"][n]) for n in NUMERIC},
                high={n: float(data["high"][n]) for n in NUMERIC},
                sex_counts={k: int(v) for k, v in data.get("sex_counts", {}).items()},
                sex_means={
                    s: {n: float(v[n]) for n in NUMERIC}
                    for s, v in data.get("sex_means", {}).items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CardioInputError(
                "checkpoint", f"condition statistics are incomplete ({error})"
            ) from None
        if any(not math.isfinite(v) or v <= 0 for v in stats.std.values()):
            raise CardioInputError("checkpoint", "condition standard deviations must be positive")
        return stats

    def vector(self, conditions: Conditions) -> np.ndarray:
        """Model input [5]: z-scored age, height, weight, SBP and sex as -1 (F) / +1 (M)."""
        c = parse_conditions(conditions)
        z = {n: (getattr(c, n) - self.mean[n]) / self.std[n] for n in NUMERIC}
        sex = 1.0 if c.is_male else -1.0
        return np.array([z["age"], sex, z["height"], z["weight"], z["sbp"]], dtype=np.float32)

    def matrix(self, conditions: Iterable[Conditions]) -> np.ndarray:
        """Model input [N, 5] of several condition sets."""
        rows = [self.vector(c) for c in conditions]
        return np.stack(rows) if rows else np.zeros((0, 5), dtype=np.float32)

    def out_of_range(self, conditions: Conditions) -> list[str]:
        """One warning text per condition outside the training range (empty when all inside)."""
        c = parse_conditions(conditions)
        warnings = []
        for n in NUMERIC:
            value = getattr(c, n)
            if value < self.low[n] or value > self.high[n]:
                warnings.append(
                    f"{n} {_short(value)} {UNITS[n]} is outside the training range "
                    f"{_short(self.low[n])}-{_short(self.high[n])}: the model extrapolates"
                )
        if self.sex_counts and self.sex_counts.get(c.sex, 0) == 0:
            warnings.append(f"sex {c.sex} was not in the training data: the model extrapolates")
        return warnings

    def typical(self, sex: str = "F", **changes: float) -> Conditions:
        """Conditions at the training means (per sex where known), with some values changed."""
        sex = parse_sex(sex)
        means = self.sex_means.get(sex, self.mean)
        values: dict[str, Any] = {n: means[n] for n in NUMERIC}
        values["sex"] = sex
        values.update(changes)
        return parse_conditions(values)


def _short(value: float) -> str:
    """A condition value for messages: at most one decimal, no trailing zeros."""
    return f"{round(float(value), 1):g}"


def parse_sex(value: Any) -> str:
    """'F' or 'M' from any spelling Conditions accepts; anything else is an error."""
    text = str(value).strip().upper()[:1] if value is not None else ""
    if text not in SEXES:
        raise CardioInputError("condition 'sex'", f"must be 'F' or 'M', got {value!r}")
    return text


def with_condition(base: Conditions, name: str, value: Any) -> Conditions:
    """Copy of ``base`` with one condition changed (validated like any other input)."""
    if name not in CONDITION_NAMES:
        raise CardioInputError("condition", f"unknown name {name!r}; expected {CONDITION_NAMES}")
    values = base.as_dict()
    values[name] = value
    return parse_conditions(values)
