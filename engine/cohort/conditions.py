"""Clinical conditions of synthetic subjects: age, sex, height, weight and SBP, jointly spread.

Height depends on sex (and falls slightly with age), weight follows from height through a
log-normal BMI that rises in mid-life, and systolic pressure rises with age and BMI, as in
population surveys of adults. Each diagnostic group has its own age and sex mix (DCM and MINF
patients are older and more often men).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from cardio_explorer.engine.subject import GROUPS, Conditions

AGE_RANGE = (18.0, 80.0)


@dataclass(frozen=True)
class Demographics:
    """Age distribution (truncated normal, years) and share of men of one group."""

    age_mean: float
    age_sd: float
    p_male: float


DEMOGRAPHICS = {
    "NOR": Demographics(45.0, 15.0, 0.55),
    "DCM": Demographics(55.0, 13.0, 0.70),
    "HCM": Demographics(50.0, 15.0, 0.65),
    "MINF": Demographics(62.0, 10.0, 0.80),
    "ARV": Demographics(42.0, 15.0, 0.60),
}


def _truncated_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float):
    # Resampling (not clipping) keeps pile-ups off the range ends.
    for _ in range(100):
        value = rng.normal(mean, sd)
        if lo <= value <= hi:
            return float(value)
    return float(np.clip(mean, lo, hi))


def sample_conditions(group: str, rng: np.random.Generator) -> Conditions:
    """Draw one subject's conditions for a diagnostic group."""
    demo = DEMOGRAPHICS[group]
    male = bool(rng.random() < demo.p_male)
    age = round(_truncated_normal(rng, demo.age_mean, demo.age_sd, *AGE_RANGE))
    # Height by sex (cm); older cohorts are a little shorter.
    height_mean = (176.0 if male else 163.0) - 0.06 * (age - 45.0)
    height = _truncated_normal(rng, height_mean, 7.0 if male else 6.5, 145.0, 205.0)
    # BMI log-normal around 25-27, rising until about 60.
    bmi_median = (26.3 if male else 25.2) + 0.05 * (min(age, 60.0) - 45.0)
    bmi = float(np.clip(bmi_median * np.exp(rng.normal(0.0, 0.15)), 17.0, 45.0))
    weight = bmi * (height / 100.0) ** 2
    # SBP (mmHg): rises with age and BMI, higher in men.
    sbp = 104.0 + 0.5 * (age - 18.0) + 0.9 * (bmi - 25.0) + (5.0 if male else 0.0)
    sbp = float(np.clip(sbp + rng.normal(0.0, 12.0), 85.0, 210.0))
    return Conditions(
        age=float(age),
        sex="M" if male else "F",
        height=round(height, 1),
        weight=round(weight, 1),
        sbp=float(round(sbp)),
    )


@dataclass(frozen=True)
class ConditionStats:
    """Expected log-BSA, its variance, and age moments of a group's condition distribution."""

    log_bsa_mean: float
    log_bsa_var: float
    age_mean: float
    age_var: float
    p_male: float


@cache
def condition_stats(group: str) -> ConditionStats:
    """Moments of a group's conditions from a fixed large sample (used to centre the effects)."""
    if group not in GROUPS:
        raise KeyError(group)
    rng = np.random.default_rng(20240607)
    draws = [sample_conditions(group, rng) for _ in range(2000)]
    log_bsa = np.log([c.bsa for c in draws])
    ages = np.array([c.age for c in draws])
    male = np.array([c.is_male for c in draws])
    return ConditionStats(
        float(log_bsa.mean()),
        float(log_bsa.var()),
        float(ages.mean()),
        float(ages.var()),
        float(male.mean()),
    )
