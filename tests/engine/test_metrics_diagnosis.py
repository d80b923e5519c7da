"""ACDC class rules: each ACDC class mean meets its own rule; the NOR mean meets no other."""

from __future__ import annotations

import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.metrics.diagnosis import UNCLASSIFIED, classify, meets_group_rule
from cardio_explorer.engine.metrics.phenotypes import Phenotypes
from cardio_explorer.engine.subject import Conditions

# PHYSIOLOGY.md, ACDC training set means: LVEDV, LVESV, RVEDV, RVESV, mass, LVEF, RVEF, wall.
ACDC_MEANS = {
    "NOR": (130, 52, 153, 69, 98, 60, 55, 8.3),
    "DCM": (285, 233, 178, 126, 162, 18, 32, 8.6),
    "HCM": (129, 42, 118, 46, 169, 67, 60, 12.9),
    "MINF": (172, 119, 119, 55, 117, 31, 56, 9.1),
    "ARV": (107, 49, 196, 134, 74, 55, 31, 7.4),
}
PATHOLOGIES = ("DCM", "HCM", "MINF", "ARV")


def _phenotypes(group: str) -> Phenotypes:
    lvedv, lvesv, rvedv, rvesv, mass, lvef, rvef, wall = ACDC_MEANS[group]
    return Phenotypes(
        lvedv, lvesv, lvedv - lvesv, lvef, rvedv, rvesv, rvedv - rvesv, rvef, mass, wall
    )


# BSA 1.9 m2 (the default) for both sexes: 175 cm x 74.3 kg.
CONDITIONS = [None, Conditions(50, "M", 175, 74.25, 125), Conditions(50, "F", 175, 74.25, 120)]


@pytest.mark.parametrize("conditions", CONDITIONS)
@pytest.mark.parametrize("group", list(ACDC_MEANS))
def test_class_means_meet_their_own_rule(group: str, conditions) -> None:
    assert meets_group_rule(group, _phenotypes(group), conditions)


@pytest.mark.parametrize("conditions", CONDITIONS)
def test_nor_mean_meets_no_pathological_rule(conditions) -> None:
    nor = _phenotypes("NOR")
    assert [g for g in PATHOLOGIES if meets_group_rule(g, nor, conditions)] == []


@pytest.mark.parametrize("group", list(ACDC_MEANS))
def test_classify_recovers_each_class_mean(group: str) -> None:
    assert classify(_phenotypes(group)) == group
    assert not meets_group_rule("NOR", _phenotypes(group)) or group == "NOR"


def test_indexing_and_sex_specific_limits() -> None:
    # LVEDV 160 mL: index 84 at BSA 1.9 -> normal for a man (< 90), dilated for a woman (< 80).
    ph = Phenotypes(160, 64, 96, 60, 150, 68, 82, 55, 110, 8.5)
    assert meets_group_rule("NOR", ph, CONDITIONS[1])
    assert not meets_group_rule("NOR", ph, CONDITIONS[2])
    # RVEDV 200 mL: index 105 -> abnormal RV for a woman only; a small body indexes higher.
    rv = Phenotypes(120, 50, 70, 58, 200, 90, 110, 55, 90, 8.0)
    assert meets_group_rule("ARV", rv, CONDITIONS[2])
    assert not meets_group_rule("ARV", rv, CONDITIONS[1])
    assert meets_group_rule("ARV", rv, Conditions(50, "M", 160, 55, 120))


def test_unknown_group_and_unclassified() -> None:
    with pytest.raises(CardioInputError, match="unknown group"):
        meets_group_rule("XYZ", _phenotypes("NOR"))
    assert meets_group_rule("RV", _phenotypes("ARV"))  # ACDC's spelling of ARV
    grey_zone = Phenotypes(130, 72, 58, 45, 150, 70, 80, 53, 100, 8.0)  # LVEF 45 %
    assert classify(grey_zone) == UNCLASSIFIED


def test_bsa_alone_indexes_the_volumes_when_conditions_are_unknown() -> None:
    # A dilated, failing LV of 200 mL: over 100 mL/m2 for a small patient (BSA 1.6), not
    # for a large one (2.1); with neither, the typical adult's 1.9 decides (105 mL/m2).
    ph = Phenotypes(200, 150, 50, 25, 150, 70, 80, 53, 150, 9)
    assert meets_group_rule("DCM", ph, None, bsa_m2=1.6)
    assert not meets_group_rule("DCM", ph, None, bsa_m2=2.1)
    assert meets_group_rule("DCM", ph)
    # known conditions come first: 175 cm, 74.25 kg is BSA 1.9 whatever bsa_m2 says
    assert meets_group_rule("DCM", ph, CONDITIONS[1], bsa_m2=2.1)
