"""``cardio-explorer train label-vae`` on a tiny ACDC-layout cohort written in tmp_path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cardio_explorer.app.cli import main
from cardio_explorer.app.commands.train_label_vae import pick_subjects
from cardio_explorer.engine.io.acdc import write_info_cfg
from cardio_explorer.engine.io.nifti import write_label_volume
from cardio_explorer.engine.label_vae.network import load_label_vae
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume

TINY = {
    "name": "tiny",
    "nz": 4,
    "size": 32,
    "encoder_channels": [4, 8],
    "encoder_convs_per_block": 2,
    "encoder_fc": [32],
    "decoder_fc": [32],
    "decoder_channels": [8, 4],
    "head_channels": 4,
}
GROUPS = ("NOR", "DCM", "HCM", "ARV")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _heart(n_slices: int, scale: float) -> np.ndarray:
    yy, xx = np.mgrid[:40, :40]
    stack = np.zeros((n_slices, 40, 40), np.uint8)
    for k in range(n_slices):
        r = 5 * scale * (1 - 0.4 * k / n_slices)
        d = np.hypot(yy - 20, xx - 24)
        stack[k][np.hypot((yy - 20) / 1.3, xx - (24 - 2 * r - 2)) < r * 1.1] = 3
        stack[k][d < r + 1.5] = 2
        stack[k][d < r] = 1
    return stack


@pytest.fixture
def cohort(tmp_path):
    """Six subjects in ACDC layout (ED frame 1, ES frame 5), 3 mm in-plane."""
    root = tmp_path / "cohort"
    for i in range(6):
        sid = f"patient{i + 1:03d}"
        folder = root / sid
        folder.mkdir(parents=True)
        info = {
            "ED": 1,
            "ES": 5,
            "Group": GROUPS[i % 4],
            "Height": 170,
            "NbFrame": 10,
            "Weight": 70,
        }
        write_info_cfg(folder / "Info.cfg", info)
        for frame, scale in ((1, 1.0 + 0.04 * i), (5, 0.8)):
            vol = LabelVolume.from_array(_heart(4, scale), (8.0, 3.0, 3.0))
            write_label_volume(vol, folder / f"{sid}_frame{frame:02d}_gt.nii.gz", acdc_labels=True)
    return root


def test_cli_trains_writes_checkpoints_and_resumes(cohort, tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "run" / "vae.safetensors"
    common = [
        "train",
        "label-vae",
        "--data",
        str(cohort),
        "--config",
        str(config),
        "--batch-size",
        "8",
        "--lr",
        "3e-3",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--spacing-mm",
        "3",
        "--val-fraction",
        "0.2",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main([*common, "--epochs", "2", "--checkpoint-every", "1"]) == 0
    printed = capsys.readouterr().out
    assert "epoch 2:" in printed
    assert "val Dice lv" in printed
    assert f"wrote {out}" in printed
    model, checkpoint = load_label_vae(out)
    training = checkpoint.extra["training"]
    assert model.config.name == "tiny"
    assert training["epochs"] == 2
    assert training["data"] == str(cohort.resolve())
    assert training["n_subjects"] == 6
    assert training["command"].startswith("cardio-explorer train label-vae --data ")
    assert "--epochs 2" in training["command"]
    assert "--config" in training["command"]
    assert set(training["final_val_dice"]) == {"lv", "myo", "rv", "mean"}
    assert checkpoint.extra["grid"] == {"size": 32, "spacing_mm": 3.0, "frame": "anatomical"}
    assert training["options"]["flip"] is False
    assert "atlas" in checkpoint.extra or "--no-atlas" in training["command"]

    state = out.with_name("vae.state.safetensors")
    resumed_out = tmp_path / "run" / "more.safetensors"
    resume_args = [a if a != str(out) else str(resumed_out) for a in common]
    assert main([*resume_args, "--epochs", "3", "--resume", str(state), "--no-atlas"]) == 0
    assert "epoch 3:" in capsys.readouterr().out
    history = load_checkpoint(resumed_out).extra["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_header_frame_and_flips_are_recorded(cohort, tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "header.safetensors"
    argv = ["train", "label-vae", "--data", str(cohort), "--config", str(config)]
    argv += ["--epochs", "1", "--batch-size", "8", "--device", "cpu", "--threads", "1"]
    argv += ["--spacing-mm", "3", "--no-progress", "--out", str(out)]
    argv += ["--frame", "header", "--max-rotation-deg", "180", "--flip"]
    assert main(argv) == 0
    extra = load_checkpoint(out).extra
    assert extra["grid"]["frame"] == "header"
    options = extra["training"]["options"]
    assert (options["flip"], options["max_rotation_deg"]) == (True, 180.0)
    command = extra["training"]["command"]
    assert "--frame header" in command
    assert "--flip" in command
    assert "--max-rotation-deg 180.0" in command
    with pytest.raises(SystemExit) as exit_:
        main([*argv[:-5], "--frame", "sideways"])
    assert exit_.value.code == 2
    assert "--frame: invalid choice: 'sideways'" in capsys.readouterr().err


def test_cli_errors_are_one_clear_line(cohort, tmp_path, capsys):
    base = ["train", "label-vae", "--data", str(cohort), "--no-progress", "--device", "cpu"]
    assert main([*base, "--config", "huge"]) == 2
    assert "--config: 'huge' is neither a preset" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**TINY, "depth": 3}))
    assert main([*base, "--config", str(bad)]) == 2
    assert "unknown label VAE config keys ['depth']" in capsys.readouterr().err
    assert main([*base, "--epochs", "0"]) == 2
    assert "--epochs: invalid value 0" in capsys.readouterr().err
    assert main(["train", "label-vae", "--data", str(tmp_path / "none"), "--no-progress"]) == 2
    assert "error:" in capsys.readouterr().err


def test_max_subjects_spreads_over_groups():
    subjects = [Subject(f"{g}{i}", g) for g in ("NOR", "DCM", "HCM") for i in range(4)]
    picked = pick_subjects(subjects, 5)
    assert len(picked) == 5
    assert {s.group for s in picked} == {"NOR", "DCM", "HCM"}
    assert len(pick_subjects(subjects, 50)) == 12
