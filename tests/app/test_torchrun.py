"""``torchrun --nproc-per-node 2 -m cardio_explorer train KIND``: DDP over gloo on the CPU.

Each kind trains a tiny model on two processes (about 15 s each on 2 cores); the loss falls,
rank 0 alone prints and writes, the files record two processes, and the app's loader takes the
checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import COHORT, TINY, TINY_SPADE, write_tiny_cohort

from cardio_explorer.app.cli import main
from cardio_explorer.app.jobs.models import load_slot
from cardio_explorer.engine.io.nifti import read_label_volume, write_image_volume
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.volume import ImageVolume

pytestmark = pytest.mark.slow

INTENSITY = np.array([-0.7, 0.6, -0.2, 0.5], dtype=np.float32)  # background, LV, MYO, RV


def _torchrun(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    """Two CPU processes of ``python -m cardio_explorer`` on a free local port."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "cardio_explorer", *argv]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def _label_vae(root: Path) -> list[str]:
    write_tiny_cohort(root / "cohort")
    (root / "tiny.json").write_text(json.dumps(TINY.to_dict()))
    return ["label-vae", "--config", "tiny.json", "--spacing-mm", "1.5", "--val-fraction", "0"]


def _cheart(root: Path) -> list[str]:
    argv = ["cohort", "--n", "6", "--seed", "3", "--geometry", "dense", "--frames", "6"]
    argv += ["--grid", "16,32,32", "--spacing", "8,5,5", "--no-images", "--workers", "1"]
    assert main([*argv, "--quiet", "--out", str(root / "cohort")]) == 0
    config = {"base": "tiny", "grid": [8, 16, 16], "spacing": [16, 10, 10], "batch_size": 2}
    (root / "tiny.json").write_text(json.dumps(config))
    return ["cheart", "--config", "tiny.json", "--val-fraction", "0.34", "--patience", "0"]


def _spade(root: Path) -> list[str]:
    """The tiny label cohort with an image per labelled frame (one intensity per tissue)."""
    write_tiny_cohort(root / "cohort")
    rng = np.random.default_rng(0)
    for sid, _, _ in COHORT:
        for path in sorted((root / "cohort" / sid).glob("*_gt.nii.gz")):
            labels = read_label_volume(path, acdc_labels=True)
            image = INTENSITY[labels.data] + rng.normal(0, 0.03, labels.data.shape)
            image = ImageVolume(data=image * 300 + 400, affine=labels.affine)
            write_image_volume(image, path.with_name(path.name.replace("_gt", "")))
    (root / "tiny.json").write_text(json.dumps(TINY_SPADE.to_json()))
    return ["spade", "--config", "tiny.json", "--val-fraction", "0"]


# kind: (cohort and options, epochs)
KINDS = {"label_vae": (_label_vae, 6), "cheart": (_cheart, 6), "spade": (_spade, 3)}


@pytest.mark.parametrize("kind", list(KINDS))
def test_two_processes_train_and_the_app_loads_the_result(kind, tmp_path):
    setup, epochs = KINDS[kind]
    train_args = setup(tmp_path)
    out = tmp_path / "run" / f"{kind}.safetensors"
    run = _torchrun(
        tmp_path,
        "train",
        *train_args,
        *("--data", "cohort", "--epochs", str(epochs), "--batch-size", "4", "--seed", "1"),
        *("--device", "cpu", "--no-progress", "--out", str(out)),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote ") == 1  # rank 0 alone reports (and writes)
    lines = run.stdout.splitlines()  # start-up lines too (SPADE's data and device): rank 0's
    assert len(lines) == len(set(lines)), run.stdout

    extra = load_checkpoint(out).extra
    if kind == "spade":
        assert extra["processes"] == 2
        history = load_checkpoint(out.with_name("spade.state.safetensors")).extra["training"]
        rec = [h["reconstruction"] for h in history["history"]]
        assert rec[-1] < rec[0]
    else:
        assert extra["training"]["processes"] == 2
        # the data term: the total also carries the KL term, whose weight warms up
        losses = [h["ce"] for h in extra["training"]["history"]]
        assert len(losses) >= 2
        assert losses[-1] < losses[0], extra["training"]["history"]
    slot = load_slot(kind, out, torch.device("cpu"))
    assert slot.ready, slot.message
