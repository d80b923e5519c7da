"""Condition parsing, normalisation statistics and training-range warnings."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.cheart.conditions import (
    ConditionStats,
    parse_conditions,
    with_condition,
)
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import Conditions


def _cohort() -> list[Conditions]:
    return [
        Conditions(age=30, sex="F", height=160, weight=60, sbp=110),
        Conditions(age=50, sex="M", height=180, weight=80, sbp=130),
        Conditions(age=70, sex="M", height=176, weight=90, sbp=150),
    ]


def test_vector_is_z_scored_with_sex_as_plus_minus_one():
    stats = ConditionStats.from_conditions(_cohort())
    assert stats.mean["age"] == pytest.approx(50.0)
    assert stats.low["age"] == 30
    assert stats.high["sbp"] == 150
    matrix = stats.matrix(_cohort())
    assert matrix.shape == (3, 5)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[:, [0, 2, 3, 4]].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(matrix[:, [0, 2, 3, 4]].std(axis=0), 1.0, atol=1e-5)
    assert matrix[:, 1].tolist() == [-1.0, 1.0, 1.0]


def test_stats_round_trip_through_json_dict():
    stats = ConditionStats.from_conditions(_cohort())
    again = ConditionStats.from_dict(stats.to_dict())
    assert again == stats
    assert stats.sex_means["M"]["height"] == pytest.approx(178.0)


def test_incomplete_stats_are_a_clear_error():
    data = ConditionStats.from_conditions(_cohort()).to_dict()
    del data["std"]["sbp"]
    with pytest.raises(CardioInputError, match="condition statistics are incomplete"):
        ConditionStats.from_dict(data)


def test_out_of_range_gives_warnings_not_errors():
    stats = ConditionStats.from_conditions(_cohort())
    assert stats.out_of_range(_cohort()[1]) == []
    old = Conditions(age=95, sex="F", height=160, weight=60, sbp=200)
    warnings = stats.out_of_range(old)
    assert len(warnings) == 2
    assert "age 95 years is outside the training range 30-70" in warnings[0]
    assert warnings[1].startswith("sbp 200 mmHg")
    assert np.all(np.isfinite(stats.vector(old)))


def test_sex_missing_from_training_is_reported():
    stats = ConditionStats.from_conditions([c for c in _cohort() if c.sex == "M"])
    female = Conditions(age=50, sex="F", height=170, weight=80, sbp=130)
    assert any("sex F" in w for w in stats.out_of_range(female))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"age": 50, "sex": "F", "height": 170, "weight": 70}, "missing sbp"),
        ({"age": "old", "sex": "F", "height": 170, "weight": 70, "sbp": 120}, "not a number"),
        ({"age": True, "sex": "F", "height": 170, "weight": 70, "sbp": 120}, "not a number"),
        (
            {"age": float("nan"), "sex": "F", "height": 170, "weight": 70, "sbp": 120},
            "positive number",
        ),
        ({"age": 50, "sex": "X", "height": 170, "weight": 70, "sbp": 120}, "'F' or 'M'"),
        ({"age": None, "sex": "F", "height": 170, "weight": 70, "sbp": 120}, "missing age"),
    ],
)
def test_bad_conditions_are_one_clear_error(values, message):
    with pytest.raises(CardioInputError, match=message):
        parse_conditions(values)


def test_numeric_strings_are_accepted_and_sweeps_validate():
    c = parse_conditions({"age": "45", "sex": "m", "height": 170, "weight": 70, "sbp": 120})
    assert c.age == 45.0
    assert c.sex == "M"
    assert with_condition(c, "age", 80).age == 80
    with pytest.raises(CardioInputError, match="unknown name"):
        with_condition(c, "bmi", 25)


def test_typical_uses_per_sex_means():
    stats = ConditionStats.from_conditions(_cohort())
    assert stats.typical("F").height == pytest.approx(160.0)
    assert stats.typical("M", age=40).age == 40
