"""Target phenotypes per synthetic subject, calibrated to the ACDC per-class table.

Volumes and mass are log-normal around the ACDC class mean, scaled by BSA, sex and age (men's
hearts are larger at equal BSA; volumes fall and mass rises a little with age) with the residual
spread set so that each class's total spread matches the ACDC standard deviation. Ejection
fractions are normal around the class mean. Draws that break their class's (operationalised)
ACDC rule are redrawn, so classes stay separable. The maximum wall is a target for the wall
profile (in HCM it grows with the LV mass, so the heaviest hearts get the thickest walls); where
the mass on a small cavity forces a thicker wall the measured value ends up above its target,
which the per-class offsets in ``_OFFSETS`` compensate (like any mean shift the rule redraws
cause).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardio_explorer.engine.cohort.conditions import condition_stats
from cardio_explorer.engine.metrics.diagnosis import meets_group_rule
from cardio_explorer.engine.metrics.phenotypes import Phenotypes
from cardio_explorer.engine.subject import Conditions


@dataclass(frozen=True)
class Stat:
    """Mean and standard deviation."""

    mean: float
    sd: float


@dataclass(frozen=True)
class ClassTable:
    """One row of the ACDC per-class table (PHYSIOLOGY.md)."""

    lvedv: Stat
    lvesv: Stat
    rvedv: Stat
    rvesv: Stat
    lvm: Stat
    lvef: Stat
    rvef: Stat
    max_wall: Stat


# fmt: off
ACDC_TABLE = {  # LVEDV, LVESV, RVEDV, RVESV, LV mass, LVEF, RVEF, max ED wall
    "NOR": ClassTable(Stat(130, 26), Stat(52, 12), Stat(153, 37), Stat(69, 20), Stat(98, 25),
                      Stat(60, 5), Stat(55, 8), Stat(8.3, 1.1)),
    "DCM": ClassTable(Stat(285, 48), Stat(233, 49), Stat(178, 67), Stat(126, 64), Stat(162, 31),
                      Stat(18, 7), Stat(32, 18), Stat(8.6, 1.2)),
    "HCM": ClassTable(Stat(129, 35), Stat(42, 18), Stat(118, 34), Stat(46, 13), Stat(169, 52),
                      Stat(67, 9), Stat(60, 11), Stat(12.9, 2.0)),
    "MINF": ClassTable(Stat(172, 43), Stat(119, 36), Stat(119, 36), Stat(55, 23), Stat(117, 18),
                       Stat(31, 8), Stat(56, 10), Stat(9.1, 1.2)),
    "ARV": ClassTable(Stat(107, 38), Stat(49, 21), Stat(196, 49), Stat(134, 45), Stat(74, 24),
                      Stat(55, 6), Stat(31, 15), Stat(7.4, 1.5)),
}
# fmt: on

# Log-scale effects on volumes/mass: exponent of BSA, men vs women, per decade of age.
_EFFECTS = {
    "lvedv": (1.0, 0.15, -0.03),
    "rvedv": (1.0, 0.18, -0.04),
    "lvm": (1.0, 0.20, 0.01),
}
# Residual correlation of (LVEDV, LV mass, RVEDV): one heart size shared by all three.
_RESIDUAL_CORR = np.array([[1.0, 0.5, 0.6], [0.5, 1.0, 0.3], [0.6, 0.3, 1.0]])
# Correlation of the maximum wall with the LV mass residual.
_WALL_MASS_CORR = 0.6
# Hypertrophied hearts: the maximum wall follows the LV mass as a power law, wall ~ mass^b with
# a small log-normal scatter (b, scatter SD in log units), which reaches ACDC's thickest HCM
# walls (to 26 mm, at LV masses of 250-270 g; wall-mass correlation 0.82). b is steeper than
# ACDC's own log-log slope (0.4) because the cohort keeps the ACDC table's mean (12.9 mm) while
# the project's wall meter reads ACDC's HCM labels at 19.3 +- 3.5 mm: only a steep law reaches
# the 25 mm tail from that mean.
_WALL_MASS_EXPONENT = {"HCM": (1.2, 0.08)}
# Heaviest LV (g): real HCM hearts reach about 400 g.
_LVM_MAX_G = 400.0
# Women's LVEF is about 3 points above men's (UK Biobank).
_LVEF_SEX_POINTS = 3.0

# Plausible ranges: (EF lo, EF hi) per class, wall (lo, hi) mm.
_LVEF_RANGE = {
    "NOR": (51.0, 75.0),
    "DCM": (6.0, 38.0),
    "HCM": (56.0, 85.0),
    "MINF": (12.0, 39.0),
    "ARV": (42.0, 70.0),
}
_RVEF_RANGE = {
    "NOR": (42.0, 72.0),
    "DCM": (8.0, 65.0),
    "HCM": (35.0, 82.0),
    "MINF": (30.0, 78.0),
    "ARV": (8.0, 62.0),
}
_WALL_RANGE = {
    "NOR": (6.2, 11.5),
    "DCM": (6.0, 12.5),
    "HCM": (9.5, 25.0),
    "MINF": (6.5, 13.0),
    "ARV": (5.2, 11.5),
}
# Shifts of the sampling location (in class SDs) that undo the mean shifts of rule redraws and
# of walls that cannot be as thin as targeted (calibrated on `cohort --n 200 --seed 7`).
_OFFSETS: dict[str, dict[str, float]] = {
    "NOR": {"max_wall": 0.2, "lvm": 0.15},
    "DCM": {"max_wall": -0.4},
    "HCM": {"max_wall": -0.6, "lvm": -0.25},
    "MINF": {"max_wall": -0.2},
    "ARV": {"max_wall": -0.1},
}
_MAX_REDRAWS = 200


@dataclass(frozen=True)
class Targets:
    """Phenotypes one synthetic heart is built to show (mL, %, g, mm)."""

    lvedv_ml: float
    lvef: float
    rvedv_ml: float
    rvef: float
    lvm_g: float
    max_wall_mm: float

    @property
    def lvesv_ml(self) -> float:
        """End-systolic LV volume."""
        return self.lvedv_ml * (1.0 - self.lvef / 100.0)

    @property
    def rvesv_ml(self) -> float:
        """End-systolic RV volume."""
        return self.rvedv_ml * (1.0 - self.rvef / 100.0)

    def as_phenotypes(self) -> Phenotypes:
        """The targets in the form the metrics use."""
        return Phenotypes(
            lvedv_ml=self.lvedv_ml,
            lvesv_ml=self.lvesv_ml,
            lvsv_ml=self.lvedv_ml - self.lvesv_ml,
            lvef=self.lvef,
            rvedv_ml=self.rvedv_ml,
            rvesv_ml=self.rvesv_ml,
            rvsv_ml=self.rvedv_ml - self.rvesv_ml,
            rvef=self.rvef,
            lvm_g=self.lvm_g,
            max_wall_mm=self.max_wall_mm,
        )


def _log_scale(key: str, group: str, conditions: Conditions, cv: float) -> tuple[float, float]:
    """Explained log-effect of the conditions and the residual SD that completes the class CV."""
    stats = condition_stats(group)
    b_bsa, b_sex, b_age = _EFFECTS[key]
    effect = (
        b_bsa * (np.log(conditions.bsa) - stats.log_bsa_mean)
        + b_sex * (float(conditions.is_male) - stats.p_male)
        + b_age * (conditions.age - stats.age_mean) / 10.0
    )
    explained = (
        b_bsa**2 * stats.log_bsa_var
        + b_sex**2 * stats.p_male * (1 - stats.p_male)
        + b_age**2 * stats.age_var / 100.0
    )
    total = np.log1p(cv**2)  # log-normal variance with this coefficient of variation
    residual_sd = float(np.sqrt(max(total - explained, 0.25 * total)))
    return float(effect), residual_sd


def _draw(group: str, conditions: Conditions, rng: np.random.Generator) -> Targets:
    row = ACDC_TABLE[group]
    offsets = _OFFSETS[group]
    z = rng.multivariate_normal(np.zeros(3), _RESIDUAL_CORR)
    sizes = {}
    for i, key in enumerate(("lvedv", "lvm", "rvedv")):
        stat: Stat = getattr(row, key)
        effect, residual_sd = _log_scale(key, group, conditions, stat.sd / stat.mean)
        total_var = np.log1p((stat.sd / stat.mean) ** 2)
        # exp(mu - var/2) keeps the arithmetic mean on the class mean.
        log_mean = np.log(stat.mean) - total_var / 2 + offsets.get(key, 0.0) * stat.sd / stat.mean
        sizes[key] = float(np.exp(log_mean + effect + residual_sd * z[i]))
    sex_sign = 1.0 if conditions.sex == "F" else -1.0
    p_male = condition_stats(group).p_male
    lvef = (
        row.lvef.mean
        + offsets.get("lvef", 0.0) * row.lvef.sd
        + _LVEF_SEX_POINTS / 2 * (sex_sign + (2 * p_male - 1))
        + rng.normal(0.0, row.lvef.sd)
    )
    rvef = row.rvef.mean + offsets.get("rvef", 0.0) * row.rvef.sd + rng.normal(0.0, row.rvef.sd)
    wall = row.max_wall.mean + offsets.get("max_wall", 0.0) * row.max_wall.sd
    if group in _WALL_MASS_EXPONENT:
        exponent, scatter = _WALL_MASS_EXPONENT[group]
        wall *= (sizes["lvm"] / row.lvm.mean) ** exponent * np.exp(rng.normal(0.0, scatter))
    else:
        residual = _WALL_MASS_CORR * z[1] + np.sqrt(1 - _WALL_MASS_CORR**2) * rng.normal()
        wall += row.max_wall.sd * residual
    return Targets(
        lvedv_ml=sizes["lvedv"],
        lvef=float(np.clip(lvef, *_LVEF_RANGE[group])),
        rvedv_ml=sizes["rvedv"],
        rvef=float(np.clip(rvef, *_RVEF_RANGE[group])),
        lvm_g=min(sizes["lvm"], _LVM_MAX_G),
        max_wall_mm=float(np.clip(wall, *_WALL_RANGE[group])),
    )


def sample_targets(group: str, conditions: Conditions, rng: np.random.Generator) -> Targets:
    """Draw target phenotypes for one subject that meet its class's ACDC rule."""
    targets = _draw(group, conditions, rng)
    for _ in range(_MAX_REDRAWS):
        if meets_group_rule(group, targets.as_phenotypes(), conditions):
            break
        targets = _draw(group, conditions, rng)
    return targets
