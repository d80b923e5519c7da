"""CHeart training (checkpoints, early stopping, resume) and evaluation report on toy data."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.cheart import training
from cardio_explorer.engine.cheart.config import TINY
from cardio_explorer.engine.cheart.data import build_sequences
from cardio_explorer.engine.cheart.evaluation import EvaluationSettings, evaluate_cheart
from cardio_explorer.engine.cheart.model import load_model
from cardio_explorer.engine.cheart.options import TrainOptions
from cardio_explorer.engine.cheart.toy import random_model, toy_subjects
from cardio_explorer.engine.cheart.training import state_path_for, train_cheart
from cardio_explorer.engine.errors import CardioInputError

CONFIG = TINY.with_changes(grid=(8, 16, 16), spacing=(12.0, 6.0, 6.0), n_frames=4, batch_size=3)


@pytest.fixture(scope="module")
def sequences():
    subjects = toy_subjects(8, grid=(8, 16, 16), spacing_zyx=(12, 6, 6), n_frames=4, seed=1)
    return build_sequences(subjects, CONFIG.grid, CONFIG.spacing, CONFIG.n_frames)


def _options(**changes) -> TrainOptions:
    base = {
        "epochs": 2,
        "lr": 1e-2,
        "device": "cpu",
        "progress": False,
        "threads": 1,
        "checkpoint_every": 1,
    }
    return TrainOptions(**(base | changes))


def test_training_writes_model_and_state_and_resumes_identically(sequences, tmp_path):
    train, val = sequences.split(0.25, seed=0)
    out = tmp_path / "a" / "cheart.safetensors"
    straight = train_cheart(train, val, CONFIG, _options(epochs=3), out=out)
    assert out.is_file()
    assert state_path_for(out).is_file()
    assert [r.epoch for r in straight.history] == [1, 2, 3]
    assert all(r.val_dice is not None for r in straight.history)
    assert straight.best_val_dice["mean"] == max(r.val_dice["mean"] for r in straight.history)
    model = load_model(out)
    assert model.training["best_epoch"] == straight.best_epoch
    assert model.stats.low["age"] == min(c.age for c in train.conditions)

    out_b = tmp_path / "b" / "cheart.safetensors"
    train_cheart(train, val, CONFIG, _options(epochs=2), out=out_b)
    resumed = train_cheart(
        train, val, None, _options(epochs=3), out=out_b, resume=state_path_for(out_b)
    )
    assert [r.epoch for r in resumed.history] == [1, 2, 3]
    np.testing.assert_allclose(
        [r.loss for r in resumed.history], [r.loss for r in straight.history], rtol=1e-4
    )


def test_early_stopping_after_patience_validations(sequences, monkeypatch):
    calls = []

    def flat_dice(*args, **kwargs):
        calls.append(1)
        return {"lv": 0.5, "myo": 0.5, "rv": 0.5, "mean": 0.5}

    monkeypatch.setattr(training, "completion_dice", flat_dice)
    train, val = sequences.split(0.25, seed=0)
    result = train_cheart(train, val, CONFIG, _options(epochs=20, patience=2))
    assert result.stopped_early
    assert len(result.history) == 3
    assert result.best_epoch == 1


def test_mismatched_grid_and_bad_options_are_errors(sequences):
    with pytest.raises(CardioInputError, match="the config needs"):
        train_cheart(sequences, None, TINY, _options())
    with pytest.raises(CardioInputError, match="--patience"):
        TrainOptions(patience=-1)


def test_evaluation_report_has_every_section(sequences):
    model = random_model(CONFIG, seed=0)
    settings = EvaluationSettings(n_generated=2, generation_surface_every=2)
    report = evaluate_cheart(
        model, sequences.subset(range(4)), sequences.subset(range(4, 8)), settings
    )
    comp = report["completion"]
    assert comp["n_subjects"] == 4
    assert comp["pca"]["n_components"] == [3]
    for block in (
        comp["model"],
        comp["pca"],
        report["generation"]["mean"],
        report["generation"]["best"],
    ):
        assert set(block["dice"]) == {"lv", "myo", "rv", "mean"}
    gen = report["generation"]
    assert gen["best"]["dice"]["mean"] >= gen["mean"]["dice"]["mean"]
    assert set(report["distributions"]) == {
        "lvedv_ml",
        "lvesv_ml",
        "lvef",
        "rvedv_ml",
        "rvesv_ml",
        "lvm_g",
    }
    assert report["distributions"]["lvedv_ml"]["wasserstein"] >= 0
    assert isinstance(report["passed"], bool)
    # Cross-fitting on the test subjects when no baseline cohort is given.
    alone = evaluate_cheart(model, sequences, None, settings)
    assert "cross-fitting" in alone["completion"]["pca"]["fitted_on"]
