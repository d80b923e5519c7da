"""``synthesize --layout nnunet --images`` datasets (morphs, 4D sequences as a 3D case per frame)
pass nnU-Net v2's own integrity check."""

from __future__ import annotations

import json

import pytest
from tiny_models import (
    tiny_cheart_checkpoint,
    tiny_label_vae_checkpoint,
    tiny_spade_checkpoint,
    write_tiny_cohort,
)

from cardio_explorer.app.cli import main

nnunet = pytest.importorskip(
    "nnunetv2.experiment_planning.verify_dataset_integrity",
    reason="nnunetv2 not installed (see the README: pip install --no-deps nnunetv2 and the "
    "nnunet-check extra)",
)


@pytest.mark.slow
def test_nnunet_dataset_passes_verify_dataset_integrity(tmp_path, monkeypatch):
    cohort = write_tiny_cohort(tmp_path / "cohort")
    checkpoint = tiny_label_vae_checkpoint(cohort, tmp_path / "vae.safetensors", balanced=True)
    spade = tiny_spade_checkpoint(tmp_path / "spade.safetensors")
    out = tmp_path / "Dataset901_Morphs"
    argv = ["synthesize", "--checkpoint", str(checkpoint), "--spade-checkpoint", str(spade)]
    argv += ["--out", str(out), "--layout", "nnunet", "--images", "--groups", "DCM,HCM"]
    argv += ["--seeds", "0", "--alphas", "0.5,1", "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["numTraining"] == 2 * 2 * 2 * 2  # sources x groups x alphas x phases
    assert len(list((out / "imagesTr").iterdir())) == info["numTraining"]
    # nnU-Net's own check (it raises on any problem); it reads nnUNet_raw only for its defaults
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    nnunet.verify_dataset_integrity(str(out), num_processes=1)


@pytest.mark.slow
def test_nnunet_sequence_dataset_passes_verify_dataset_integrity(tmp_path, monkeypatch):
    cheart = tiny_cheart_checkpoint(tmp_path / "cheart.safetensors")
    spade = tiny_spade_checkpoint(tmp_path / "spade.safetensors")
    out = tmp_path / "Dataset902_Cycles"
    argv = ["synthesize", "--cheart-checkpoint", str(cheart), "--spade-checkpoint", str(spade)]
    argv += ["--out", str(out), "--layout", "nnunet", "--images", "--seeds", "0-1"]
    argv += ["--conditions-grid", "age=40,70;sex=F", "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["numTraining"] == 2 * 2 * 6  # condition sets x seeds x frames
    assert len(list((out / "imagesTr").iterdir())) == info["numTraining"]
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    nnunet.verify_dataset_integrity(str(out), num_processes=1)
