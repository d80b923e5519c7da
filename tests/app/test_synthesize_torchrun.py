"""``synthesize`` under torchrun: 2 CPU processes (gloo) write the same labels as 1 process."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from tiny_models import tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.app.cli import main


def rows_of(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_two_ranks_write_the_single_process_dataset(tmp_path):
    cohort = write_tiny_cohort(tmp_path / "cohort")
    checkpoint = tiny_label_vae_checkpoint(cohort, tmp_path / "tiny.safetensors", balanced=True)
    args = ["synthesize", "--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress"]
    args += ["--groups", "DCM,HCM", "--seeds", "0-2", "--alphas", "0,0.5,1", "--workers", "0"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "cardio_explorer",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("wrote ")]
    assert len(lines) == 2, run.stdout  # one whole line per rank, never two run together
    assert any("(rank 0 of 2, 36 in all)" in line and "manifest.csv" in line for line in lines)
    one, two = tmp_path / "one", tmp_path / "two"
    names = sorted(p.name for p in one.glob("*.nii.gz"))
    assert names == sorted(p.name for p in two.glob("*.nii.gz"))
    assert len(names) == 2 * 2 * 3 * 3 * 2
    for name in names:  # labels byte-identical (gzip headers hold no time: whole files equal)
        assert (one / name).read_bytes() == (two / name).read_bytes()
    key = ("case_index", "case", "file_ed", "file_es", "lvedv_ml", "max_wall_mm", "plan_sha256")
    assert [[r[k] for k in key] for r in rows_of(two / "manifest.csv")] == [
        [r[k] for k in key] for r in rows_of(one / "manifest.csv")
    ]
    assert not (two / ".parts").exists()
