"""ACDC diagnostic class rules, operationalised on global phenotypes.

The ACDC challenge rules (PHYSIOLOGY.md) are written for clinicians with regional wall motion
and segmental thickness at hand; here only global phenotypes exist, and the literal thresholds
do not all hold for the ACDC training set's own class means (HCM mass 169 g at BSA 1.9 is
89 g/m2 < 110; its maximum wall measures 12.9 mm at 1.5 mm pixels, not > 15 mm). Each rule below
keeps the clinical intent, is met by its ACDC class mean and is not met by the NOR mean; every
threshold is a named constant documented where it is used.

Indexing: volumes and mass are divided by BSA (Mosteller) from ``conditions``; without
conditions a typical adult BSA of 1.9 m2 is assumed and sex-specific limits are replaced by the
midpoint of the male and female limits.
"""

from __future__ import annotations

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.metrics.phenotypes import Phenotypes
from cardio_explorer.engine.subject import ACDC_GROUP_NAMES, GROUPS, Conditions

DEFAULT_BSA_M2 = 1.9

# NOR: ACDC "LVEF > 50 %, LVEDV index < 90 (men) / < 80 (women) mL/m2, wall < 12 mm"; the RV
# must also be normal (below the ARV limits), or an ARV heart with a normal LV would be NOR.
NOR_MIN_LVEF = 50.0
NOR_MAX_LVEDVI = {"M": 90.0, "F": 80.0, None: 85.0}
NOR_MAX_WALL_MM = 12.0

# DCM: ACDC "LVEDV index > 100 mL/m2 and LVEF < 40 %", used as written (DCM mean: 150, 18 %).
DCM_MIN_LVEDVI = 100.0
DCM_MAX_LVEF = 40.0

# HCM: ACDC "LV mass index > 110 g/m2, several segments > 15 mm at ED, LVEF > 55 %". LVEF > 55 %
# is kept. Hypertrophy is met by any of: mass index > 110 g/m2 (literal); maximum wall >= 12 mm
# (the NOR rule's own upper limit; > 15 mm is unreachable on ACDC labels, whose HCM mean is
# 12.9 +- 2.0 mm); or LV mass / LVEDV >= 1.15 g/mL, a pixel-size-free marker of concentric
# hypertrophy (ACDC means: HCM 1.31, NOR 0.75, DCM 0.57, MINF 0.68, ARV 0.69).
HCM_MIN_LVEF = 55.0
HCM_MIN_LVMI = 110.0
HCM_MIN_WALL_MM = 12.0
HCM_MIN_MASS_VOLUME_RATIO = 1.15

# MINF: ACDC "LVEF < 40 % with several abnormally contracting segments". Regional motion is not
# a global phenotype, so the rule keeps LVEF < 40 % (MINF mean 31 %); DCM also has a low EF,
# which is why classify() tests DCM first.
MINF_MAX_LVEF = 40.0

# ARV: ACDC "RV cavity index > 110 (men) / > 100 (women) mL/m2 or RVEF < 40 %", as written
# (ARV mean: RVEF 31 %). Both-ventricle dilation also meets it; classify() prefers DCM.
ARV_MIN_RVEDVI = {"M": 110.0, "F": 100.0, None: 105.0}
ARV_MAX_RVEF = 40.0

# Order in which classify() tests the rules: DCM before MINF and ARV (a dilated low-EF LV with a
# failing RV is DCM by the ACDC definition), HCM before NOR, NOR last.
CLASSIFY_ORDER = ("DCM", "HCM", "MINF", "ARV", "NOR")
UNCLASSIFIED = "UNCLASSIFIED"


def _canonical_group(group: str) -> str:
    name = str(group).strip().upper()
    aliases = {acdc: ours for ours, acdc in ACDC_GROUP_NAMES.items()}
    name = aliases.get(name, name)
    if name not in GROUPS:
        raise CardioInputError("group", f"unknown group {group!r}; expected one of {GROUPS}")
    return name


def _rule_holds(group: str, ph: Phenotypes, bsa: float, sex: str | None) -> bool:
    lvedvi, rvedvi, lvmi = ph.lvedv_ml / bsa, ph.rvedv_ml / bsa, ph.lvm_g / bsa
    arv = rvedvi > ARV_MIN_RVEDVI[sex] or ph.rvef < ARV_MAX_RVEF
    if group == "ARV":
        return arv
    if group == "DCM":
        return lvedvi > DCM_MIN_LVEDVI and ph.lvef < DCM_MAX_LVEF
    if group == "MINF":
        return ph.lvef < MINF_MAX_LVEF
    if group == "HCM":
        ratio = ph.lvm_g / ph.lvedv_ml if ph.lvedv_ml > 0 else 0.0
        hypertrophy = (
            lvmi > HCM_MIN_LVMI
            or ph.max_wall_mm >= HCM_MIN_WALL_MM
            or ratio >= HCM_MIN_MASS_VOLUME_RATIO
        )
        return ph.lvef > HCM_MIN_LVEF and hypertrophy
    # NOR
    return (
        ph.lvef > NOR_MIN_LVEF
        and lvedvi < NOR_MAX_LVEDVI[sex]
        and ph.max_wall_mm < NOR_MAX_WALL_MM
        and not arv
    )


def meets_group_rule(
    group: str,
    phenotypes: Phenotypes,
    conditions: Conditions | None = None,
    bsa_m2: float | None = None,
) -> bool:
    """True when the phenotypes satisfy the (operationalised) ACDC rule of ``group``.

    ``bsa_m2`` indexes the volumes when the conditions are unknown but height and weight are
    (ACDC); the conditions' own BSA comes first, the typical adult's last."""
    name = _canonical_group(group)
    if conditions is not None:
        bsa = conditions.bsa
    else:
        bsa = bsa_m2 if bsa_m2 is not None else DEFAULT_BSA_M2
    sex = conditions.sex if conditions is not None else None
    return _rule_holds(name, phenotypes, bsa, sex)


def classify(phenotypes: Phenotypes, conditions: Conditions | None = None) -> str:
    """First group of CLASSIFY_ORDER whose rule holds, else UNCLASSIFIED (e.g. LVEF 40-50 %)."""
    for group in CLASSIFY_ORDER:
        if meets_group_rule(group, phenotypes, conditions):
            return group
    return UNCLASSIFIED
