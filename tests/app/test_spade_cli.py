"""``train spade`` / ``evaluate spade`` / the SPADE bench on a tiny ACDC-layout cohort."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cardio_explorer.app import cli
from cardio_explorer.app.commands import bench_spade
from cardio_explorer.engine.io.acdc import write_info_cfg
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

TINY = {
    "base": "lean",
    "image_size": 32,
    "z_dim": 8,
    "base_channels": 16,
    "up_channels": [8, 8, 8],
    "spade_hidden": 8,
    "enc_base": 4,
    "enc_max": 16,
    "ndf": 8,
}
INTENSITY = np.array([-0.7, 0.6, -0.2, 0.5], dtype=np.float32)
FAST = ("--batch-size", "8", "--device", "cpu", "--threads", "1")


def _train(data, out, *options: str) -> int:
    """``train spade`` on ``data`` writing ``out``, without progress bars."""
    return cli.main(
        ["train", "spade", "--data", str(data), "--out", str(out), *options, "--no-progress"]
    )


def _evaluate(checkpoint, data, out, *options: str) -> int:
    """``evaluate spade`` of ``checkpoint`` on ``data`` on the CPU, writing ``out``."""
    argv = ["evaluate", "spade", "--checkpoint", str(checkpoint), "--data", str(data)]
    return cli.main([*argv, "--out", str(out), *options, "--device", "cpu", "--no-progress"])


def _tiny_config(folder):
    """The TINY config as a JSON file in ``folder``."""
    config = folder / "tiny.json"
    config.write_text(json.dumps(TINY))
    return config


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _heart(rng: np.random.Generator, size: int, radius: float) -> np.ndarray:
    """(4, size, size) labels: LV disc, myocardial ring, RV disc beside it."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    cy, cx = size / 2 + rng.uniform(-3, 3), size / 2 - 3 + rng.uniform(-3, 3)
    out = np.zeros((4, size, size), dtype=np.uint8)
    for k in range(4):
        r = radius * (1 - 0.12 * k)
        out[k][np.hypot(yy - cy, xx - cx - 2.2 * r) < 1.3 * r] = 3
        out[k][np.hypot(yy - cy, xx - cx) < r + 2.5] = 2
        out[k][np.hypot(yy - cy, xx - cx) < r] = 1
    return out


def write_cohort(root, n: int = 6, size: int = 48, seed: int = 0):
    """n ACDC-layout subjects, 48 x 48 at 1.5 mm (so preprocessing crops 32 x 32)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        sid = f"patient{i + 1:03d}"
        folder = root / sid
        folder.mkdir(parents=True)
        write_info_cfg(
            folder / "Info.cfg",
            {"ED": 1, "ES": 6, "Group": "NOR", "Height": 170, "NbFrame": 10, "Weight": 70},
        )
        for frame, radius in ((1, 5.0), (6, 3.5)):
            labels = _heart(rng, size, radius)
            image = INTENSITY[labels] + rng.normal(0, 0.03, labels.shape).astype(np.float32)
            spacing = (8.0, 1.5, 1.5)
            write_label_volume(
                LabelVolume.from_array(labels, spacing),
                folder / f"{sid}_frame{frame:02d}_gt.nii.gz",
                acdc_labels=True,
            )
            write_image_volume(
                ImageVolume.from_array(image * 300 + 400, spacing),
                folder / f"{sid}_frame{frame:02d}.nii.gz",
            )
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("spade_cli")
    data = write_cohort(root / "cohort")
    config = _tiny_config(root)
    out = root / "model" / "spade.safetensors"
    options = ("--config", str(config), "--epochs", "2", "--seed", "3", "--val-fraction", "0.34")
    code = _train(data, out, *options, *FAST)
    assert code == 0
    return root, data, config, out


def test_train_writes_model_and_state_with_the_split(trained, capsys):
    _root, _data, _, out = trained
    state = out.with_name("spade.state.safetensors")
    assert out.is_file()
    assert state.is_file()
    model = load_checkpoint(out, "spade")
    assert model.config["image_size"] == 32
    assert len(model.extra["train_subjects"]) == 4
    assert len(model.extra["held_out_subjects"]) == 2
    assert "train spade" in model.extra["command"]
    assert not any(k.startswith("discriminator.") for k in model.tensors)
    assert load_checkpoint(state).extra["training"]["epochs_done"] == 2


def test_resume_adds_epochs(trained, tmp_path, capsys):
    _, data, _, out = trained
    state = out.with_name("spade.state.safetensors")
    resumed = tmp_path / "resumed.safetensors"
    options = ("--epochs", "3", "--seed", "3", "--resume", str(state), "--val-fraction", "0.34")
    code = _train(data, resumed, *options, *FAST)
    assert code == 0
    assert "epoch 3:" in capsys.readouterr().out
    history = load_checkpoint(resumed.with_name("resumed.state.safetensors")).extra["training"]
    assert [h["epoch"] for h in history["history"]] == [1, 2, 3]


def test_evaluate_writes_json_and_markdown(trained, tmp_path, capsys):
    _, data, _, out = trained
    report_path = tmp_path / "eval" / "report.json"
    code = _evaluate(out, data, report_path, "--segmenter-steps", "4")
    assert code == 0
    report = json.loads(report_path.read_text())
    assert set(report["label_fidelity_dice"]) == {"lv", "myo", "rv", "mean"}
    assert 0.0 <= report["real_image_dice"]["mean"] <= 1.0
    assert set(report["intensity"]) == {"background", "lv", "myo", "rv"}
    assert set(report["intensity"]["lv"]) == {"real", "synthetic", "relative_mean_error"}
    assert {"label_fidelity_mean_dice", "fidelity_gap_to_real_dice", "intensity_mean_lv"} <= set(
        report["targets"]
    )
    assert isinstance(report["passed"], bool)
    assert len(report["test_subjects"]) == 2
    assert report["counts"]["segmenter_subjects"] == 4
    markdown = report_path.with_suffix(".md").read_text()
    assert "## Targets" in markdown
    assert "label fidelity Dice" in capsys.readouterr().out


def test_evaluate_without_bundled_model_says_how_to_train(trained, tmp_path, monkeypatch, capsys):
    _, data, _, _ = trained
    monkeypatch.setattr(
        "cardio_explorer.resources.bundled_checkpoint", lambda kind: tmp_path / "none.st"
    )
    code = cli.main(["evaluate", "spade", "--data", str(data), "--out", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "bundled SPADE model" in err
    assert "cardio-explorer train spade" in err


def test_evaluate_refuses_subjects_the_model_was_trained_on(tmp_path, capsys):
    data = write_cohort(tmp_path / "cohort", n=3)
    config = _tiny_config(tmp_path)
    out = tmp_path / "all.safetensors"
    options = ("--config", str(config), "--epochs", "1", "--val-fraction", "0")
    assert _train(data, out, *options, *FAST) == 0
    code = _evaluate(out, data, tmp_path / "r.json")
    assert code == 2
    assert "all 3 subjects were used to train" in capsys.readouterr().err


def test_train_rejects_a_bad_config(tmp_path, capsys):
    data = write_cohort(tmp_path / "cohort", n=2)
    code = _train(data, tmp_path / "x.safetensors", "--config", "huge")
    assert code == 2
    assert "--config" in capsys.readouterr().err


def test_bench_times_a_32_slice_stack_on_cpu():
    (result,) = bench_spade.measure(torch.device("cpu"), repeats=1)
    assert "32 x 128 x 128" in result.name
    assert result.target_ms == bench_spade.CPU_TARGET_MS
    assert result.median_ms > 0


def test_evaluate_real_alone_reports_contrast(trained, tmp_path, capsys):
    _, data, _, out = trained
    report_path = tmp_path / "real.json"
    argv = ["evaluate", "spade", "--checkpoint", str(out), "--real", str(data)]
    code = cli.main([*argv, "--out", str(report_path), "--device", "cpu", "--no-progress"])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert "label_fidelity_dice" not in report  # no --data
    real = report["real"]
    assert real["n_volumes"] == 12
    contrast = real["contrast"]
    # the written images: blood 0.6, myocardium -0.2, background -0.7 (before normalisation)
    assert contrast["real"]["blood_myo"] > 1.5
    assert contrast["real"]["myo_background"] > 1.0
    for name in ("blood_myo", "myo_background"):
        r, s = contrast["real"][name], contrast["synthetic"][name]
        assert contrast["relative_error"][name] == pytest.approx(abs(s - r) / r, abs=1e-3)
    assert set(report["targets"]) == {"real_contrast_blood_myo", "real_contrast_myo_background"}
    assert "## Contrast on real hearts" in report_path.with_suffix(".md").read_text()


def test_evaluate_needs_data_or_real(trained, tmp_path, capsys):
    _, _, _, out = trained
    argv = ["evaluate", "spade", "--checkpoint", str(out), "--out", str(tmp_path / "r.json")]
    assert cli.main(argv) == 2
    assert "--real" in capsys.readouterr().err


def _split_file(folder, train, held_out):
    """A split file (ids only), as docs/acdc_split.json."""
    path = folder / "split.json"
    path.write_text(json.dumps({"rule": "test", "train": train, "held_out": held_out}))
    return path


def test_split_trains_on_its_train_ids_and_evaluates_on_its_held_out_ids(tmp_path, capsys):
    data = write_cohort(tmp_path / "cohort", n=6)
    train_ids = [f"patient{i:03d}" for i in (1, 2, 3, 4)]
    held = ["patient005", "patient006"]
    split = _split_file(tmp_path, train_ids, held)
    config = _tiny_config(tmp_path)
    out = tmp_path / "split.safetensors"
    options = ("--config", str(config), "--epochs", "1", "--val-fraction", "0")
    assert _train(data, out, *options, "--split", str(split), *FAST) == 0
    extra = load_checkpoint(out, "spade").extra
    assert sorted(extra["train_subjects"]) == train_ids
    assert "--split" in extra["command"]

    report_path = tmp_path / "r.json"
    argv = ("--split", str(split), "--real", str(data), "--segmenter-steps", "2")
    assert _evaluate(out, data, report_path, *argv) == 0
    report = json.loads(report_path.read_text())
    # without the split nothing would be testable (SPADE saw every id of the training part)
    assert report["test_subjects"] == held
    assert report["counts"]["segmenter_subjects"] == 4
    assert report["real"]["n_subjects"] == 2  # --real: the held-out ids only
    assert report["real"]["n_volumes"] == 4


def test_split_refuses_held_out_ids_the_model_was_trained_on(trained, tmp_path, capsys):
    _, data, _, out = trained  # trained on 4 of the 6 subjects
    seen = sorted(load_checkpoint(out, "spade").extra["train_subjects"])
    others = [f"patient{i:03d}" for i in range(1, 7) if f"patient{i:03d}" not in seen]
    split = _split_file(tmp_path, others, seen[:1])
    assert _evaluate(out, data, tmp_path / "r.json", "--split", str(split)) == 2
    err = capsys.readouterr().err
    assert seen[0] in err
    assert "were used to train this checkpoint" in err


def test_split_ids_of_another_folder_are_not_the_training_subjects(trained, tmp_path, capsys):
    _, _, _, out = trained  # trained on 4 subjects of another folder with the same ids
    data = write_cohort(tmp_path / "other", n=4, seed=5)
    split = _split_file(tmp_path, ["patient001", "patient002"], ["patient003", "patient004"])
    argv = ("--split", str(split), "--segmenter-steps", "2")
    assert _evaluate(out, data, tmp_path / "r.json", *argv) == 0
    assert json.loads((tmp_path / "r.json").read_text())["test_subjects"] == [
        "patient003",
        "patient004",
    ]
