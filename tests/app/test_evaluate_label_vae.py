"""``cardio-explorer evaluate label-vae`` on a tiny model and a tiny ACDC-layout cohort."""

from __future__ import annotations

import json

import pytest
from tiny_models import COHORT, TINY, tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.app.cli import main
from cardio_explorer.engine.label_vae.evaluation import TRENDS
from cardio_explorer.engine.label_vae.network import build_label_vae, save_label_vae


def _evaluate(checkpoint, cohort, out, *options: str) -> int:
    """Run ``evaluate label-vae`` on a checkpoint and cohort, writing ``out``."""
    argv = ["evaluate", "label-vae", "--checkpoint", str(checkpoint), "--data", str(cohort)]
    return main([*argv, "--out", str(out), *options])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_tiny_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def checkpoint(cohort, tmp_path_factory):
    return tiny_label_vae_checkpoint(cohort, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def test_evaluate_writes_json_and_markdown(cohort, checkpoint, tmp_path, capsys):
    out = tmp_path / "report" / "report.json"
    options = ("--seeds", "2", "--alpha-steps", "3", "--device", "cpu", "--no-progress")
    code = _evaluate(checkpoint, cohort, out, *options)
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["recon_dice"]) >= {"lv", "myo", "rv", "mean"}
    assert report["recon_dice"]["n_volumes"] == 2 * len(COHORT)
    assert 0.0 <= report["recon_dice"]["mean"] <= 1.0
    assert report["settings"]["morph_sources"] == "held-out NOR subjects"
    assert set(report["morph"]) == {"DCM", "HCM"}  # the tiny atlas has no ARV / MINF
    dcm = report["morph"]["DCM"]
    assert dcm["alphas"] == [0.0, 0.5, 1.0]
    assert set(dcm["phenotypes"]) == {
        "lvedv_ml",
        "lvef",
        "lvm_g",
        "max_wall_mm",
        "rvedv_ml",
        "rvef",
    }
    assert all(len(curve) == 3 for curve in dcm["phenotypes"].values())
    assert dcm["n_endpoints"] == 2
    assert set(report["consistency"]) >= {"real", "correlated", "uncorrelated"}
    assert report["consistency"]["real"] >= 0.0
    names = set(report["targets"])
    assert {
        "recon_dice_mean",
        "endpoints_meet_group_rule",
        "correlated_below_uncorrelated",
        "correlated_near_real",
    } <= names
    assert len(names) == 4 + len(TRENDS) + 3
    # the tiny atlas has no ARV group: its trend target fails rather than passing vacuously
    assert report["targets"]["arv_rvedv_ml_rises"] == {
        "value": None,
        "threshold": "spearman >= 0.9",
        "pass": False,
    }
    assert report["passed"] is False
    markdown = out.with_suffix(".md").read_text()
    assert "## Targets" in markdown
    assert "recon_dice_mean" in markdown
    assert "targets met" in capsys.readouterr().out


def test_strict_exits_1_when_a_target_is_missed(cohort, checkpoint, tmp_path):
    options = ("--seeds", "1", "--alpha-steps", "2", "--device", "cpu", "--no-progress")
    code = _evaluate(checkpoint, cohort, tmp_path / "r.json", *options, "--limit", "2", "--strict")
    assert code == 1


def test_missing_checkpoint_says_how_to_train(cohort, tmp_path, capsys):
    code = _evaluate(tmp_path / "none.safetensors", cohort, tmp_path / "r.json")
    assert code == 2
    err = capsys.readouterr().err
    assert "not found" in err
    assert "cardio-explorer train label-vae" in err


def test_checkpoint_without_atlas_is_a_clear_error(cohort, tmp_path, capsys):
    path = save_label_vae(tmp_path / "bare.safetensors", build_label_vae(TINY))
    code = _evaluate(path, cohort, tmp_path / "r.json")
    assert code == 2
    assert "no latent atlas" in capsys.readouterr().err


def test_bad_settings_are_rejected(cohort, checkpoint, tmp_path, capsys):
    code = _evaluate(checkpoint, cohort, tmp_path / "r.json", "--seeds", "0")
    assert code == 2
    assert "--seeds" in capsys.readouterr().err


def test_real_alone_reports_real_figures(cohort, checkpoint, tmp_path):
    out = tmp_path / "real.json"
    argv = ["evaluate", "label-vae", "--checkpoint", str(checkpoint), "--real", str(cohort)]
    assert main([*argv, "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert "recon_dice" not in report  # no --data: no cohort figures
    real = report["real"]
    assert real["recon_dice"]["n_volumes"] == 2 * len(COHORT)
    assert set(real["recon_dice"]) >= {"lv", "myo", "rv", "mean", "min_volume"}
    assert 0.0 <= real["recon_dice"]["mean"] <= 1.0
    # the tiny atlas is built from these very subjects: NOR and DCM have 2+ and 1 subjects
    assert real["atlas_distance"]["mean"] > 0.0
    assert set(real["atlas_distance"]["nearest_group_counts"]) <= {"NOR"}
    assert {"real_recon_dice_mean", "real_atlas_distance_mean"} <= set(report["targets"])
    assert "## Real hearts" in out.with_suffix(".md").read_text()


def test_real_beside_data_and_split_reads_held_out_ids(cohort, checkpoint, tmp_path):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["p1", "p2"], "held_out": ["p3", "p4"]}))
    out = tmp_path / "both.json"
    options = ("--seeds", "1", "--alpha-steps", "2", "--device", "cpu", "--no-progress")
    code = _evaluate(
        checkpoint, cohort, out, *options, "--real", str(cohort), "--split", str(split)
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["recon_dice"]["n_volumes"] == 4
    assert report["real"]["recon_dice"]["n_volumes"] == 4
    assert "held-out" not in report["settings"]["morph_sources"]  # no held-out NOR subject
    assert "real_recon_dice_rv" in report["targets"]
    assert "recon_dice_mean" in report["targets"]


def test_neither_data_nor_real_is_one_clear_error(checkpoint, tmp_path, capsys):
    argv = ["evaluate", "label-vae", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    assert "--real" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_split_with_overlapping_ids_is_rejected(cohort, checkpoint, tmp_path, capsys):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["p1", "p3"], "held_out": ["p3"]}))
    code = _evaluate(checkpoint, cohort, tmp_path / "r.json", "--split", str(split))
    assert code == 2
    assert "both in train and held_out" in capsys.readouterr().err


def test_evaluation_reads_hearts_in_the_checkpoints_frame(
    cohort, checkpoint, tmp_path, monkeypatch
):
    from cardio_explorer.app.commands import evaluate_label_vae as command
    from cardio_explorer.engine.label_vae.morph import PathologyMorph
    from cardio_explorer.engine.label_vae.network import load_label_vae

    model, loaded = load_label_vae(checkpoint)
    header = save_label_vae(
        tmp_path / "header.safetensors",
        model,
        extra={**loaded.extra, "grid": {"size": TINY.size, "spacing_mm": 1.5, "frame": "header"}},
    )
    frames: list[str] = []
    real_preprocess = command.preprocess_subject

    def spy(subject, *args, **kwargs):
        out = real_preprocess(subject, *args, **kwargs)
        frames.append(out.info["preprocess"]["frame"]["kind"])
        return out

    monkeypatch.setattr(command, "preprocess_subject", spy)
    for path, expected in ((checkpoint, "anatomical"), (header, "header")):
        frames.clear()
        out = tmp_path / f"{expected}.json"
        argv = ["evaluate", "label-vae", "--checkpoint", str(path), "--real", str(cohort)]
        assert main([*argv, "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
        assert frames == [expected] * len(COHORT)
        assert json.loads(out.read_text())["checkpoint"]["frame"] == expected
        markdown = out.with_suffix(".md").read_text()
        assert f"{expected} frame), data `None`, real `{cohort}`" in markdown
        assert PathologyMorph.from_checkpoint(path).frame == expected
