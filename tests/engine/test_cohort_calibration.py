"""Synthetic cohort physiology against the ACDC per-class table (PHYSIOLOGY.md).

Fast: the target phenotypes (which the rasteriser hits to the voxel, see test_cohort.py) are
calibrated on thousands of draws. Slow: the issue's command, ``cardio-explorer cohort --n 200
--seed 7``, measured from its manifest.csv.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cardio_explorer.app.cli import main
from cardio_explorer.engine.cohort.conditions import sample_conditions
from cardio_explorer.engine.cohort.physiology import ACDC_TABLE, sample_targets
from cardio_explorer.engine.metrics.diagnosis import meets_group_rule
from cardio_explorer.engine.metrics.phenotypes import Phenotypes
from cardio_explorer.engine.subject import GROUPS, Conditions

# manifest column -> ACDC table attribute
CHECKED = {
    "lvedv_ml": "lvedv",
    "lvesv_ml": "lvesv",
    "lvef": "lvef",
    "rvedv_ml": "rvedv",
    "rvef": "rvef",
    "lvm_g": "lvm",
}


@pytest.mark.parametrize("group", GROUPS)
def test_target_distribution_matches_acdc_class(group):
    rng = np.random.default_rng(100)
    rows = []
    for _ in range(600):
        conditions = sample_conditions(group, rng)
        rows.append(sample_targets(group, conditions, rng))
    table = ACDC_TABLE[group]
    for column, key in CHECKED.items():
        values = np.array([getattr(t, column) for t in rows])
        stat = getattr(table, key)
        assert abs(values.mean() - stat.mean) < 0.3 * stat.sd, (group, column, values.mean())
        assert 0.6 * stat.sd < values.std() < 1.4 * stat.sd, (group, column, values.std())


def test_conditions_are_realistic():
    rng = np.random.default_rng(5)
    draws = [sample_conditions(g, rng) for g in GROUPS for _ in range(300)]
    age = np.array([c.age for c in draws])
    men = np.array([c.is_male for c in draws])
    height = np.array([c.height for c in draws])
    weight = np.array([c.weight for c in draws])
    sbp = np.array([c.sbp for c in draws])
    assert age.min() >= 18
    assert age.max() <= 80
    assert height[men].mean() - height[~men].mean() > 9
    assert np.corrcoef(height, weight)[0, 1] > 0.3
    assert np.corrcoef(age, sbp)[0, 1] > 0.3
    bmi = weight / (height / 100) ** 2
    assert 23 < np.median(bmi) < 29
    minf = [c.age for c in draws[900:1200]]
    nor = [c.age for c in draws[:300]]
    assert np.mean(minf) > np.mean(nor) + 10


@pytest.mark.slow
def test_issue_command_per_group_means_within_one_acdc_sd(tmp_path):
    out = tmp_path / "cohort"
    # Labels do not depend on --no-images (test_cohort.py); skipping images saves minutes.
    code = main(
        ["cohort", "--n", "200", "--seed", "7", "--out", str(out), "--no-images", "--quiet"]
    )
    assert code == 0
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200
    walls = {}
    for group in GROUPS:
        sub = [r for r in rows if r["group"] == group]
        assert len(sub) == 40
        table = ACDC_TABLE[group]
        for column, key in CHECKED.items():
            stat = getattr(table, key)
            mean = np.mean([float(r[column]) for r in sub])
            assert abs(mean - stat.mean) < stat.sd, (group, column, mean, stat.mean)
            assert abs(mean - stat.mean) < 0.5 * stat.sd, (group, column, mean, stat.mean)
        walls[group] = np.mean([float(r["max_wall_mm"]) for r in sub])
        assert abs(walls[group] - table.max_wall.mean) < table.max_wall.sd, (group, walls[group])
        fields = Phenotypes.__dataclass_fields__
        ok = sum(
            meets_group_rule(
                group,
                Phenotypes(**{f: float(r[f]) for f in fields}),
                Conditions(
                    float(r["age"]),
                    r["sex"],
                    float(r["height"]),
                    float(r["weight"]),
                    float(r["sbp"]),
                ),
            )
            for r in sub
        )
        assert ok >= 0.9 * len(sub), (group, ok)
    assert walls["HCM"] > walls["NOR"] + 3.0
