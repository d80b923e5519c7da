"""``synthesize`` under torchrun: 2 CPU processes (gloo) write the same labels as 1 process.

Morphs (flat layout) and 4D CHeart sequences (nnU-Net and ACDC layouts): the union of both ranks'
files holds the single-process labels byte for byte, rank 0's merged manifest lists every case
once, and rank 0 alone prints the summary line (rank 1 logs it at debug level).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tiny_models import (
    tiny_cheart_checkpoint,
    tiny_label_vae_checkpoint,
    tiny_spade_checkpoint,
    write_tiny_cohort,
)

from cardio_explorer.app.cli import main

pytestmark = pytest.mark.slow


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _morphs(root: Path) -> list[str]:
    cohort = write_tiny_cohort(root / "cohort")
    checkpoint = tiny_label_vae_checkpoint(cohort, root / "tiny.safetensors", balanced=True)
    args = ["--checkpoint", str(checkpoint), "--groups", "DCM,HCM", "--seeds", "0-2"]
    return [*args, "--alphas", "0,0.5,1"]


def _sequences(layout: str, *extra: str) -> Callable[[Path], list[str]]:
    def arguments(root: Path) -> list[str]:
        cheart = tiny_cheart_checkpoint(root / "cheart.safetensors")
        args = ["--cheart-checkpoint", str(cheart), "--layout", layout, *extra]
        # three condition sets, one seed: rank 0 takes two units, rank 1 one
        return [*args, "--conditions-grid", "age=40,55,70;sex=M", "--seeds", "0"]

    return arguments


def _nnunet_images(root: Path) -> list[str]:
    spade = tiny_spade_checkpoint(root / "spade.safetensors")
    return [*_sequences("nnunet")(root), "--images", "--spade-checkpoint", str(spade)]


# name: (the models and their flags, label files relative to --out, how many, cases)
RUNS = {
    "morphs-flat": (_morphs, "*_gt.nii.gz", 2 * 2 * 3 * 3 * 2, 36),
    "sequences-nnunet": (_nnunet_images, "labelsTr/*.nii.gz", 3 * 6, 3),
    "sequences-acdc": (_sequences("acdc"), "*/*_gt.nii.gz", None, 3),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_two_ranks_write_the_single_process_dataset(name, tmp_path):
    setup, labels, n_labels, n_cases = RUNS[name]
    args = ["synthesize", *setup(tmp_path), "--device", "cpu", "--no-progress", "--workers", "0"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args, "--out", str(one)]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "cardio_explorer", "-v", *args, "--out", str(two)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    # rank 0 alone prints (one whole line); rank 1 logs its own line at debug level (-v)
    lines = [line for line in run.stdout.splitlines() if line.startswith("wrote ")]
    assert len(lines) == 1, run.stdout
    assert f"(rank 0 of 2, {n_cases} in all) and manifest.csv" in lines[0]
    assert "DEBUG rank 1: wrote " in run.stderr
    names = sorted(str(p.relative_to(one)) for p in one.glob(labels))
    assert names == sorted(str(p.relative_to(two)) for p in two.glob(labels))
    if n_labels is None:  # ACDC folders: the 4D labels and the ED and ES frames of each case
        n_labels = sum(1 + len({0, int(row["es_frame"])}) for row in rows_of(one / "manifest.csv"))
    assert len(names) == n_labels
    every = sorted(str(p.relative_to(one)) for p in one.rglob("*") if p.is_file())
    assert every == sorted(str(p.relative_to(two)) for p in two.rglob("*") if p.is_file())
    for path in every:  # labels (gzip headers hold no time), manifest, Info.cfg, dataset.json
        if path == "provenance.json" or (path.endswith(".nii.gz") and path not in names):
            continue  # the run's time and command line; images (not required to match)
        assert (one / path).read_bytes() == (two / path).read_bytes(), path
    cases = [row["case"] for row in rows_of(two / "manifest.csv")]
    assert len(cases) == len(set(cases)) == n_cases  # rank 0's merged manifest: every case once
    assert not (two / ".parts").exists()
