"""SPADE training: the reconstruction term falls, checkpoints hold what they should, resume."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors import safe_open
from spade_phantom import TINY, phantom_subjects

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.spade.data import collect_image_label_slices
from cardio_explorer.engine.spade.network import load_spade
from cardio_explorer.engine.spade.training import (
    TrainSettings,
    train_spade,
    training_state_path,
)

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def slices():
    return collect_image_label_slices(phantom_subjects(6), TINY.image_size)


def test_collect_pairs_every_slice_of_every_paired_frame(slices):
    assert len(slices) == 6 * 2 * 4
    assert slices.size == (32, 32)
    assert slices.labels.dtype == np.uint8
    assert slices.images.dtype == np.float32
    assert set(np.unique(slices.frame_index)) == {0, 5}
    assert slices.subject_ids[slices.subject_index[-1]] == "p005"


def test_collect_rejects_unpreprocessed_subjects():
    subject = phantom_subjects(1, size=48)[0]
    with pytest.raises(CardioInputError, match=r"p000: .*48 x 48, expected 32 x 32.*preprocess"):
        collect_image_label_slices([subject], 32)
    subject.images.clear()
    with pytest.raises(CardioInputError, match="images=True"):
        collect_image_label_slices([subject])


def test_tiny_run_reduces_reconstruction_and_writes_both_files(slices, tmp_path):
    out = tmp_path / "spade.safetensors"
    settings = TrainSettings(epochs=5, batch_size=8, seed=3)
    result = train_spade(
        slices,
        TINY,
        settings,
        CPU,
        out,
        val=slices.take(np.arange(8)),
        extra={"train_subjects": ["p000"]},
    )
    rec = [h["reconstruction"] for h in result.history]
    assert len(rec) == 5
    assert rec[-1] < 0.9 * rec[0]
    assert result.history[-1]["val_l1"] < result.history[0]["val_l1"]
    assert all(h["slices_per_s"] > 0 for h in result.history)

    state = training_state_path(out)
    assert state.name == "spade.state.safetensors"
    assert state.is_file()
    with safe_open(str(out), framework="pt") as handle:
        names = list(handle.keys())
    assert names
    assert all(n.startswith(("encoder.", "generator.")) for n in names)
    full = load_checkpoint(state, "spade")
    assert any(k.startswith("discriminator.") for k in full.tensors)
    assert any(k.startswith("optim_g.state.") for k in full.tensors)
    assert any(k.startswith("optim_d.state.") for k in full.tensors)
    assert full.extra["training"]["epochs_done"] == 5
    assert full.extra["train_subjects"] == ["p000"]
    model = load_spade(out)
    assert model.config == TINY


def test_resume_continues_exactly(slices, tmp_path):
    subset = slices.take(np.arange(16))
    settings = TrainSettings(epochs=2, batch_size=8, seed=5)
    whole = train_spade(subset, TINY, settings, CPU, tmp_path / "a.safetensors")
    first = train_spade(
        subset, TINY, TrainSettings(epochs=1, batch_size=8, seed=5), CPU, tmp_path / "b.safetensors"
    )
    resumed = train_spade(
        subset, TINY, settings, CPU, tmp_path / "b.safetensors", resume=first.training_state
    )
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[1]["reconstruction"] == pytest.approx(
        whole.history[1]["reconstruction"], rel=1e-4
    )
    a = load_checkpoint(tmp_path / "a.safetensors").tensors
    b = load_checkpoint(tmp_path / "b.safetensors").tensors
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=1e-4)


def test_training_input_errors(slices, tmp_path):
    settings = TrainSettings(epochs=1, batch_size=8)
    bigger = replace(TINY, image_size=64)
    with pytest.raises(CardioInputError, match="32 x 32 but the model makes 64 x 64"):
        train_spade(slices, bigger, settings, CPU, tmp_path / "x")
    with pytest.raises(CardioInputError, match="fewer than one batch"):
        train_spade(slices.take(np.arange(4)), TINY, settings, CPU, tmp_path / "x")
    with pytest.raises(CardioInputError, match="--batch-size"):
        TrainSettings(batch_size=1)
    inference_only = train_spade(
        slices.take(np.arange(8)), TINY, settings, CPU, tmp_path / "y.safetensors"
    ).checkpoint
    with pytest.raises(CardioInputError, match="no training state"):
        train_spade(slices, TINY, settings, CPU, tmp_path / "z", resume=inference_only)
