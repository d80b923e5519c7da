"""``evaluate cheart``'s issue-19 sections and targets: generated LVEF, effects, topology."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from cardio_explorer.engine.cheart.config import TINY
from cardio_explorer.engine.cheart.data import build_sequences
from cardio_explorer.engine.cheart.evaluation import EvaluationSettings, evaluate_cheart
from cardio_explorer.engine.cheart.prior import fit_latent_prior
from cardio_explorer.engine.cheart.summaries import effects_block, lvef_block, topology_block
from cardio_explorer.engine.cheart.targets import cohort_targets, several_cohorts_targets
from cardio_explorer.engine.cheart.toy import random_model, toy_subjects
from cardio_explorer.engine.labels import Label

CONFIG = TINY.with_changes(grid=(8, 16, 16), spacing=(12.0, 6.0, 6.0), n_frames=4, batch_size=3)
TARGET_KEYS = {
    "completion.dice.mean",
    "completion.dice.mean_above_pca",
    "completion.lvesv_mae_ml",
    "completion.rvesv_mae_ml",
    "generation.lvef.mean",
    "generation.lvef.sd",
    "distributions.lvedv_ml.wasserstein",
    "distributions.lvesv_ml.wasserstein",
    "effects.age.lvedv_ml_per_decade",
    "effects.age.lvm_g_per_decade",
    "effects.sex.lvedv_ml_male_minus_female",
    "effects.sex.lvm_g_male_minus_female",
    "topology.lv_exposed_fraction",
}


@pytest.fixture(scope="module")
def sequences():
    subjects = toy_subjects(6, grid=(8, 16, 16), spacing_zyx=(12, 6, 6), n_frames=4, seed=1)
    return build_sequences(subjects, CONFIG.grid, CONFIG.spacing, CONFIG.n_frames)


@pytest.fixture(scope="module")
def model_with_groups():
    """An untrained model whose prior has two components, 'DCM' and 'NOR'."""
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(40, CONFIG.z_dim))
    latents[20:] += 3.0
    prior = fit_latent_prior(latents, rng.normal(size=(40, 5)), ["DCM"] * 20 + ["NOR"] * 20)
    return dataclasses.replace(random_model(CONFIG, seed=0), prior=prior)


def _real_lvef(sequence: np.ndarray) -> float:
    """LVEF of a sequence [T, D, H, W] by hand: ED frame 0, ES the frame of least LV volume."""
    lv = (sequence == Label.LV).reshape(len(sequence), -1).sum(axis=1).astype(float)
    return 100.0 * (lv[0] - lv.min()) / lv[0]


def test_report_carries_the_issue_keys(sequences, model_with_groups):
    test = sequences.subset(range(4))
    settings = EvaluationSettings(n_generated=3, generation_surface_every=2)
    report = evaluate_cheart(model_with_groups, test, sequences.subset(range(4, 6)), settings)
    assert set(report["targets"]) == TARGET_KEYS
    assert report["passed"] == all(t["pass"] for t in report["targets"].values())
    comp = report["completion"]
    assert comp["dice"]["mean"] == comp["model"]["dice"]["mean"]
    ph = report["phenotypes"]["completion"]
    assert comp["lvesv_mae_ml"] == ph["lvesv_ml"]["mean_abs_diff"]
    assert comp["rvesv_mae_ml"] == ph["rvesv_ml"]["mean_abs_diff"]

    lvef = report["generation"]["lvef"]
    real = [_real_lvef(s) for s in test.labels]
    assert lvef["real_mean"] == pytest.approx(np.mean(real), abs=1e-6)
    assert lvef["real_sd"] == pytest.approx(np.std(real, ddof=1), abs=1e-6)
    assert lvef["n_generated"] == 12
    assert lvef["mean"] == pytest.approx(report["distributions"]["lvef"]["generated_mean"])
    components = lvef["by_component"]
    assert set(components) <= {"DCM", "NOR"}
    assert sum(c["n"] for c in components.values()) == 12
    assert lvef["real_by_group"]["NOR"]["n"] == 4

    effects = report["effects"]
    assert set(effects["age"]) == {"lvedv_ml_per_decade", "lvm_g_per_decade"}
    assert set(effects["sex"]) == {"lvedv_ml_male_minus_female", "lvm_g_male_minus_female"}
    for values in (*effects["age"].values(), *effects["sex"].values()):
        assert set(values) == {"real", "generated", "ratio"}

    topology = report["topology"]
    assert topology["completion"]["frames"] == 4 * 3  # frame 0 is the given ED
    assert topology["generation"]["frames"] == 4 * 3 * 4
    assert topology["real_sequences"]["frames"] == 4 * 4
    assert topology["lv_exposed_fraction"] == max(
        topology["completion"]["max"], topology["generation"]["max"]
    )
    assert 0.0 <= topology["lv_exposed_fraction"] <= 1.0


def test_effects_recover_a_known_law():
    rng = np.random.default_rng(2)
    ages = rng.uniform(20, 80, 30)
    male = (rng.random(30) < 0.5).astype(float)
    real = {"lvedv_ml": 100 + 5 * ages / 10 + 20 * male, "lvm_g": 90 - 2 * ages / 10 + 30 * male}
    twice = {k: np.repeat(2 * v - 100, 2) for k, v in real.items()}  # effects doubled, 2 samples
    out = effects_block(real, twice, ages, male, 2)
    assert out["age"]["lvedv_ml_per_decade"]["real"] == pytest.approx(5.0)
    assert out["age"]["lvedv_ml_per_decade"]["generated"] == pytest.approx(10.0)
    assert out["age"]["lvm_g_per_decade"]["ratio"] == pytest.approx(2.0)
    assert out["sex"]["lvm_g_male_minus_female"]["real"] == pytest.approx(30.0)
    assert out["sex"]["lvedv_ml_male_minus_female"]["generated"] == pytest.approx(40.0)


def test_lvef_and_topology_blocks():
    block = lvef_block(
        np.array([50.0, 60.0, 70.0, 40.0]),
        np.array([55.0, 65.0]),
        ["A", "A", "B", "A"],
        ["X", None],
    )
    assert block["mean"] == pytest.approx(55.0)
    assert block["real_sd"] == pytest.approx(np.std([55.0, 65.0], ddof=1))
    assert block["by_component"]["A"] == {"n": 3, "mean": pytest.approx(50.0), "sd": 10.0}
    assert block["by_component"]["B"]["sd"] is None
    assert set(block["real_by_group"]) == {"X", "unknown"}
    topo = topology_block([np.array([0.0, 0.02])], [np.array([0.005])], [np.array([0.5])])
    assert topo["lv_exposed_fraction"] == 0.02
    assert topo["completion"]["frames_over_target"] == 1
    assert topo["generation"]["frames_over_target"] == 0
    assert topo["real_sequences"]["max"] == 0.5


def _passing_report() -> dict:
    """A report that meets every target (each just inside its threshold)."""
    effect = {"real": 10.0, "generated": 12.0, "ratio": 1.2}
    return {
        "completion": {
            "dice": {"mean": 0.92},
            "pca": {"dice": {"mean": 0.90}},
            "lvesv_mae_ml": 8.0,
            "rvesv_mae_ml": 10.0,
        },
        "generation": {"lvef": {"mean": 57.0, "sd": 6.5, "real_mean": 60.0, "real_sd": 5.0}},
        "distributions": {"lvedv_ml": {"wasserstein": 8.0}, "lvesv_ml": {"wasserstein": 7.0}},
        "effects": {
            "age": {"lvedv_ml_per_decade": dict(effect), "lvm_g_per_decade": dict(effect)},
            "sex": {
                "lvedv_ml_male_minus_female": dict(effect),
                "lvm_g_male_minus_female": dict(effect),
            },
        },
        "topology": {"lv_exposed_fraction": 0.01},
    }


def _missed(report: dict) -> set[str]:
    return {k for k, t in cohort_targets(report).items() if not t["pass"]}


@pytest.mark.parametrize(
    ("path", "value", "missed"),
    [
        (("completion", "dice", "mean"), 0.919, {"completion.dice.mean"}),
        (("completion", "pca", "dice", "mean"), 0.93, {"completion.dice.mean_above_pca"}),
        (("completion", "lvesv_mae_ml"), 8.1, {"completion.lvesv_mae_ml"}),
        (("completion", "rvesv_mae_ml"), 10.1, {"completion.rvesv_mae_ml"}),
        (("generation", "lvef", "mean"), 63.1, {"generation.lvef.mean"}),
        (("generation", "lvef", "sd"), 3.4, {"generation.lvef.sd"}),
        (("distributions", "lvesv_ml", "wasserstein"), 8.2, {"distributions.lvesv_ml.wasserstein"}),
        # opposite sign, half the size (on the boundary: met), under half, no real effect
        (
            ("effects", "age", "lvm_g_per_decade", "generated"),
            -10.0,
            {"effects.age.lvm_g_per_decade"},
        ),
        (("effects", "sex", "lvm_g_male_minus_female", "generated"), 5.0, set()),
        (
            ("effects", "sex", "lvm_g_male_minus_female", "generated"),
            4.9,
            {"effects.sex.lvm_g_male_minus_female"},
        ),
        (
            ("effects", "age", "lvedv_ml_per_decade", "real"),
            0.0,
            {"effects.age.lvedv_ml_per_decade"},
        ),
        (
            ("effects", "sex", "lvedv_ml_male_minus_female", "real"),
            None,
            {"effects.sex.lvedv_ml_male_minus_female"},
        ),
        (("topology", "lv_exposed_fraction"), 0.011, {"topology.lv_exposed_fraction"}),
        (
            ("completion", "dice", "mean"),
            None,
            {"completion.dice.mean", "completion.dice.mean_above_pca"},
        ),
    ],
)
def test_each_target_fails_on_its_own(path, value, missed):
    report = _passing_report()
    assert set(cohort_targets(report)) == TARGET_KEYS
    assert _missed(report) == set()
    changed = copy.deepcopy(report)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _missed(changed) == missed


def test_several_cohorts_each_must_meet_each_target():
    good = {"targets": cohort_targets(_passing_report())}
    worse = _passing_report()
    worse["distributions"]["lvedv_ml"]["wasserstein"] = 9.0
    combined = several_cohorts_targets(
        {"seed-a": good, "seed-b": {"targets": cohort_targets(worse)}}
    )
    assert len(combined) == 2 * len(TARGET_KEYS)
    assert combined["distributions.lvedv_ml.wasserstein [seed-a]"]["pass"]
    assert not combined["distributions.lvedv_ml.wasserstein [seed-b]"]["pass"]
    assert [k for k, t in combined.items() if not t["pass"]] == [
        "distributions.lvedv_ml.wasserstein [seed-b]"
    ]
