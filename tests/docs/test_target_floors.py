"""The issue-19 ceiling scripts in docs/: the law's floor and the perfect generator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

# docs/completion_bound.py reads manifests with pandas (the nnunet-check extra, which CI installs)
pd = pytest.importorskip("pandas")

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(ratios: dict[str, float], edv: list[float]):
    rows = []
    for group, ratio in ratios.items():
        for sex in ("M", "F"):
            for v in edv:
                rows.append(
                    {
                        "group": group,
                        "sex": sex,
                        "lvedv_ml": v,
                        "lvesv_ml": v * ratio,
                        "rvedv_ml": v,
                        "rvesv_ml": v * ratio,
                        "lvef": 100 * (1 - ratio),
                    }
                )
    return pd.DataFrame(rows)


def test_law_floor_is_zero_where_the_ratio_is_fixed_and_counts_a_changed_ratio() -> None:
    bound = _script("completion_bound")
    fit = _table({"NOR": 0.4, "DCM": 0.8}, [100.0, 150.0, 200.0])
    exact = bound.law_floor_row(fit, [fit])
    assert "| 0.0 | 0.0 | 0.0 |" in exact
    off = _table({"NOR": 0.5, "DCM": 0.8}, [100.0])  # NOR ejects 10 points less than fitted
    row = bound.law_floor_row(fit, [off]).splitlines()[0]
    cells = [c.strip() for c in row.split("|")[2:5]]
    # NOR: |100 * 0.4 - 100 * 0.5| = 10 mL on half the hearts; LVEF off by 10 points there.
    assert cells == ["5.0", "5.0", "5.0"]


def test_perfect_generator_repetition_is_reproducible_and_finite() -> None:
    floor = _script("generation_floor")
    first = floor.one_repetition(np.random.default_rng(3), n_per_group=2, samples=3)
    again = floor.one_repetition(np.random.default_rng(3), n_per_group=2, samples=3)
    assert first == again
    assert 0.0 <= first["w_lvedv"] < 500.0
    assert 0.0 <= first["w_lvesv"] < 500.0
    assert np.isfinite(first["real_age_effect"])
