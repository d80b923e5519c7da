"""``cardio-explorer atlas``: the latent atlas built again, the weights left as they are."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.app.cli import main
from cardio_explorer.engine.label_vae.atlas import atlas_from_extra
from cardio_explorer.engine.nn.checkpoint import load_checkpoint, read_checkpoint_header


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_tiny_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def checkpoint(cohort, tmp_path_factory):
    return tiny_label_vae_checkpoint(cohort, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def test_rebuilt_atlas_has_lengths_and_bsa_and_the_same_weights(cohort, checkpoint, tmp_path):
    out = tmp_path / "rebuilt.safetensors"
    argv = ["atlas", "--data", str(cohort), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--no-progress"]) == 0
    before, after = load_checkpoint(checkpoint), load_checkpoint(out)
    assert before.tensors.keys() == after.tensors.keys()
    for key, value in before.tensors.items():
        assert torch.equal(value, after.tensors[key]), key
    atlas = atlas_from_extra(after.extra)
    # the tiny cohort: NOR p1 6 slices and p2 3 slices of 8 mm (40 and 16 mm), DCM p3 7 (48 mm)
    assert atlas.group_stats("NOR", "ED").extent_mm == pytest.approx(28.0)
    assert atlas.group_stats("DCM", "ES").extent_mm == pytest.approx(48.0)
    bsa = (170.0 * 70.0 / 3600.0) ** 0.5
    assert all(ref.bsa_m2 == pytest.approx(bsa) for ref in atlas.references.values())
    assert all(ref.body.height == 170.0 for ref in atlas.references.values())
    header = read_checkpoint_header(out)["extra"]["atlas_rebuilt"]
    assert header["n_subjects"] == 4
    assert "atlas --data" in header["command"]
    # refused before any work: an existing --out, or --out the same as --checkpoint
    assert main([*argv, "--no-progress"]) == 2
    same = ["atlas", "--data", str(cohort), "--checkpoint", str(out), "--out", str(out)]
    assert main([*same, "--overwrite", "--no-progress"]) == 2


def test_validation_subjects_of_the_checkpoint_stay_out(cohort, checkpoint, tmp_path):
    from cardio_explorer.engine.label_vae.network import load_label_vae, save_label_vae

    model, loaded = load_label_vae(checkpoint, "cpu")
    extra = {**loaded.extra, "training": {"val_subjects": ["p3"]}}
    marked = save_label_vae(tmp_path / "marked.safetensors", model, extra=extra)
    out = tmp_path / "out.safetensors"
    argv = ["atlas", "--data", str(cohort), "--checkpoint", str(marked), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    atlas = atlas_from_extra(load_checkpoint(out).extra)
    assert "DCM" not in atlas.groups
    assert json.dumps(atlas.info["subjects_per_group"]) == json.dumps({"NOR": 2, "HCM": 1})
