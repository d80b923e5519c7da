"""``bench gui_path``: the slider-to-surface path, GUI-free, with and without a bundled model."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_models import tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.app.cli import main
from cardio_explorer.app.commands import bench, bench_gui_path


def test_gui_path_is_a_registered_bench():
    assert "gui_path" in bench.BENCHES


def test_measure_with_a_model_times_surfaces_then_readouts(monkeypatch, tmp_path):
    cohort = write_tiny_cohort(tmp_path / "cohort")
    path = tiny_label_vae_checkpoint(cohort, tmp_path / "label_vae.safetensors", balanced=True)
    monkeypatch.setattr("cardio_explorer.resources.bundled_checkpoint", lambda kind: path)
    surfaces, readouts = bench_gui_path.measure(torch.device("cpu"), 3)
    assert surfaces.name == "GUI path: alpha -> decode -> surfaces"
    assert surfaces.target_ms == bench_gui_path.CPU_TARGET_MS
    assert surfaces.repeats == readouts.repeats == 3
    assert 0 < surfaces.median_ms < readouts.median_ms * 1.5
    assert math.isfinite(readouts.median_ms)


def test_without_a_bundled_model_the_same_costs_are_timed(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(
        "cardio_explorer.resources.bundled_checkpoint", lambda kind: tmp_path / "none.safetensors"
    )
    assert main(["bench", "--only", "gui_path", "--repeats", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "no bundled model" in out
    assert "read-outs" in out


def test_synthetic_heart_has_every_structure():
    heart = bench_gui_path.synthetic_heart()
    counts = [int((heart.data == v).sum()) for v in (1, 2, 3)]
    assert all(c > 1000 for c in counts)
    assert heart.spatial_shape == (32, 128, 128)


@pytest.mark.parametrize("scale", [0.8])
def test_smaller_scale_shrinks_the_lv(scale):
    full, small = bench_gui_path.synthetic_heart(), bench_gui_path.synthetic_heart(scale=scale)
    assert (small.data == 1).sum() < (full.data == 1).sum()
