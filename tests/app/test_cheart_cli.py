"""``train cheart`` / ``evaluate cheart`` / bench on a tiny dense cohort written by ``cohort``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cardio_explorer.app.cli import main
from cardio_explorer.app.commands import bench_cheart, bench_cheart_widths
from cardio_explorer.engine.cheart import model as cheart_model


def _evaluate(checkpoint, cohort, out, *options: str) -> int:
    """``evaluate cheart`` of ``checkpoint`` on ``cohort``, writing ``out``, no progress bar."""
    argv = ["evaluate", "cheart", "--checkpoint", str(checkpoint), "--data", str(cohort)]
    return main([*argv, "--out", str(out), *options, "--no-progress"])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cheart") / "cohort"
    status = main(
        [
            "cohort",
            "--n",
            "6",
            "--seed",
            "3",
            "--geometry",
            "dense",
            "--grid",
            "16,32,32",
            "--spacing",
            "8,5,5",
            "--frames",
            "6",
            "--no-images",
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(folder),
        ]
    )
    assert status == 0
    return folder


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    # The model grid differs from the cohort's: sequences are resampled onto it.
    path.write_text(
        json.dumps({"base": "tiny", "grid": [8, 16, 16], "spacing": [16, 10, 10], "batch_size": 2})
    )
    return path


def test_train_then_evaluate(cohort, tiny_config, tmp_path, capsys):
    out = tmp_path / "run" / "cheart.safetensors"
    status = main(
        [
            "train",
            "cheart",
            "--data",
            str(cohort),
            "--config",
            str(tiny_config),
            "--epochs",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--val-fraction",
            "0.34",
            "--no-progress",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "epoch 2/2" in printed
    assert "val Dice" in printed
    assert "best epoch" in printed
    assert out.is_file()
    # The cohort's frame duration (pixdim[4] of its 4D labels) reaches the model.
    assert cheart_model.load_model(out).frame_duration_ms > 60.0
    assert out.with_name("cheart.state.safetensors").is_file()

    report_path = tmp_path / "report.json"
    status = _evaluate(out, cohort, report_path, "--samples", "2")
    assert status == 0
    report = json.loads(report_path.read_text())
    for key in ("completion", "generation", "phenotypes", "distributions", "effects", "topology"):
        assert key in report
    assert report["data"] == [str(cohort)]
    assert "topology.lv_exposed_fraction" in report["targets"]
    assert "generation.lvef.sd" in report["targets"]
    assert report["completion"]["n_subjects"] == 6
    assert report["checkpoint"]["grid"] == [8, 16, 16]
    assert report["generation"]["samples_per_subject"] == 2
    markdown = report_path.with_suffix(".md").read_text()
    assert markdown.startswith("# CHeart evaluation")
    assert "| topology.lv_exposed_fraction |" in markdown
    for section in ("## Generated LVEF", "## Age and sex effects", "## Topology"):
        assert section in markdown
    # Two epochs on six subjects cannot meet the targets: --strict says so.
    threads = torch.get_num_threads()
    try:
        status = _evaluate(
            out,
            cohort,
            tmp_path / "strict.json",
            "--samples",
            "1",
            "--limit",
            "4",
            "--strict",
            "--threads",
            "1",
        )
    finally:
        torch.set_num_threads(threads)
    assert status == 1
    strict = json.loads((tmp_path / "strict.json").read_text())
    assert strict["completion"]["n_subjects"] == 4
    assert "(1 thread)" in strict["device"]
    # Two cohorts (here the same folder twice): each reported on its own, every target per cohort.
    status = _evaluate(
        out, cohort, tmp_path / "two.json", "--data", str(cohort), "--samples", "1", "--limit", "4"
    )
    assert status == 0
    two = json.loads((tmp_path / "two.json").read_text())
    assert set(two["cohorts"]) == {"cohort", "cohort-2"}
    assert "completion" not in two
    assert two["cohorts"]["cohort-2"]["data"] == str(cohort)
    assert two["cohorts"]["cohort"]["completion"]["n_subjects"] == 4
    per_cohort = two["cohorts"]["cohort"]["targets"]
    assert len(two["targets"]) == 2 * len(per_cohort)
    assert "distributions.lvesv_ml.wasserstein [cohort-2]" in two["targets"]
    assert two["passed"] == all(t["pass"] for t in two["targets"].values())
    assert "## Topology: LV blood pool exposed to background or RV (cohort-2)" in (
        (tmp_path / "two.md").read_text()
    )
    assert _evaluate(out, cohort, tmp_path / "t.json", "--threads", "0") == 2
    assert "--threads: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_missing_bundled_checkpoint_says_how_to_train(cohort, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        "cardio_explorer.resources.bundled_checkpoint", lambda kind: tmp_path / "none.safetensors"
    )
    status = main(["evaluate", "cheart", "--data", str(cohort), "--out", str(tmp_path / "r.json")])
    assert status == 2
    err = capsys.readouterr().err
    assert "no bundled CHeart model" in err
    assert "train cheart" in err


def test_bad_config_and_data_are_one_line_errors(cohort, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"grid": [30, 64, 64]}))
    assert main(["train", "cheart", "--data", str(cohort), "--config", str(bad)]) == 2
    assert "multiple of 16" in capsys.readouterr().err
    assert main(["train", "cheart", "--data", str(cohort), "--config", "huge"]) == 2
    assert "neither" in capsys.readouterr().err
    assert main(["train", "cheart", "--data", str(tmp_path / "nowhere"), "--config", "tiny"]) == 2
    assert "folder not found" in capsys.readouterr().err
    both = ["--resume", str(tmp_path / "a.state.safetensors"), "--init-from", str(bad)]
    assert main(["train", "cheart", "--data", str(cohort), *both]) == 2
    assert "--init-from" in capsys.readouterr().err
    assert (
        main(["train", "cheart", "--data", str(cohort), "--config", "tiny", "--threads", "0"]) == 2
    )
    assert "--threads: must be at least 1" in capsys.readouterr().err


def test_bench_measures_generation_on_cpu():
    results = bench_cheart.measure(torch.device("cpu"), repeats=1)
    # the bundled model has a motion code: calibrated (the default) and uncalibrated
    assert len(results) == 2
    assert results[0].target_ms == bench_cheart.CPU_TARGET_MS
    assert all(r.median_ms > 0 and "20 frames" in r.name for r in results)
    assert "uncalibrated" in results[1].name


def test_bench_widths_times_each_width_on_one_heart_sized_box():
    heart = bench_cheart_widths._heart(torch.device("cpu"))
    assert heart.shape == (1, 32, 64, 64)
    assert set(np.unique(heart)) >= {1, 2, 3}
    results = bench_cheart_widths.measure(torch.device("cpu"), repeats=1)
    assert [r.target_ms for r in results] == [bench_cheart_widths.TARGET_MS] * 6
    # wider configs carry more parameters, named in each row
    counts = [float(r.name.split(", ")[1].split(" M")[0]) for r in results[:5]]
    assert counts == sorted(counts)
    assert counts[0] < counts[4]
