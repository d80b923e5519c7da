"""Training the label VAE: loss goes down, exact resume, checkpoints, loop helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.config import LabelVaeConfig
from cardio_explorer.engine.label_vae.network import build_label_vae, load_label_vae, save_label_vae
from cardio_explorer.engine.label_vae.training import (
    TrainOptions,
    state_path_for,
    train_label_vae,
    train_label_vae_on_subjects,
)
from cardio_explorer.engine.label_vae.validation import reconstruction_dice
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.nn.slices import collect_label_slices
from cardio_explorer.engine.nn.training import (
    batch_indices,
    decay_factor,
    linear_ramp,
    optimizer_state_tensors,
    restore_optimizer_state,
    should_checkpoint,
)
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume

TINY = LabelVaeConfig(
    name="tiny",
    nz=4,
    size=32,
    encoder_channels=(4, 8),
    encoder_convs_per_block=2,
    encoder_fc=(32,),
    decoder_fc=(32,),
    decoder_channels=(8, 4),
    head_channels=4,
)
OPTIONS = TrainOptions(
    epochs=3,
    batch_size=8,
    lr=3e-3,
    beta=1.0,
    beta_warmup_epochs=2,
    lr_decay_epochs=1,
    device="cpu",
    threads=1,
    validate_every=1,
    checkpoint_every=1,
    progress=False,
)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Training sets the CPU thread count; give other tests back the one they had."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _heart(rng: np.random.Generator, n_slices: int, size: int, scale: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    stack = np.zeros((n_slices, size, size), np.uint8)
    cy, cx = size / 2 + rng.normal(0, 1), size / 2 + 2 + rng.normal(0, 1)
    for k in range(n_slices):
        r = size * 0.12 * scale * (1 - 0.5 * k / n_slices)
        d = np.hypot(yy - cy, xx - cx)
        stack[k][np.hypot((yy - cy) / 1.3, xx - (cx - 2.0 * r - 2)) < r * 1.1] = 3
        stack[k][d < r + 1.5] = 2
        stack[k][d < r] = 1
    return stack


def make_subjects(n: int, size: int = 32, seed: int = 0) -> list[Subject]:
    """Preprocessed-looking subjects: ED and ES stacks of a cartoon heart, groups cycling."""
    rng = np.random.default_rng(seed)
    groups = ("NOR", "DCM", "HCM", "ARV")
    subjects = []
    for i in range(n):
        scale = rng.uniform(0.8, 1.2)
        n_slices = int(rng.integers(3, 6))
        labels = {
            frame: LabelVolume.from_array(_heart(rng, n_slices, size, s), (8.0, 3.0, 3.0))
            for frame, s in ((0, scale), (4, 0.8 * scale))
        }
        info = {"preprocess": {"size": size, "spacing_mm": 3.0}}
        subjects.append(Subject(f"s{i:02d}", groups[i % 4], None, 0, 4, 10, labels, info=info))
    return subjects


@pytest.fixture(scope="module")
def slices():
    subjects = make_subjects(6)
    return collect_label_slices(subjects[:5]), collect_label_slices(subjects[5:])


def test_loss_decreases_on_a_tiny_overfit_run(slices):
    train, val = slices
    options = dataclasses.replace(OPTIONS, epochs=12, augment=False, validate_every=0)
    result = train_label_vae(train, val, TINY, options)
    losses = [r.loss for r in result.history]
    assert len(losses) == 12
    assert losses[-1] < 0.5 * losses[0]
    assert result.history[-1].val_dice is not None  # the last epoch is always validated
    assert all(r.val_dice is None for r in result.history[:-1])
    assert set(result.final_val_dice) == {"lv", "myo", "rv", "mean"}
    assert not result.model.training
    assert result.history[-1].slices_per_s > 0


def test_resume_continues_exactly_like_an_uninterrupted_run(slices, tmp_path):
    train, val = slices
    full = train_label_vae(train, val, TINY, OPTIONS, state_path=tmp_path / "full.safetensors")

    def interrupt_after_two(record):
        if record.epoch == 2:
            raise KeyboardInterrupt

    state = tmp_path / "cut.safetensors"
    with pytest.raises(KeyboardInterrupt):
        train_label_vae(train, val, TINY, OPTIONS, state_path=state, on_epoch=interrupt_after_two)
    assert load_checkpoint(state).extra["training_state"]["epochs_done"] == 2
    resumed = train_label_vae(train, val, None, OPTIONS, state_path=state, resume=state)
    assert [r.epoch for r in resumed.history] == [1, 2, 3]
    for key, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert resumed.history[-1].loss == full.history[-1].loss
    assert resumed.final_val_dice == full.final_val_dice


def test_resume_refuses_a_model_file_or_another_config(slices, tmp_path):
    train, val = slices
    model_only = save_label_vae(tmp_path / "m.safetensors", build_label_vae(TINY))
    with pytest.raises(CardioInputError, match="holds no training state"):
        train_label_vae(train, val, None, OPTIONS, resume=model_only)
    state = tmp_path / "s.safetensors"
    train_label_vae(train, None, TINY, dataclasses.replace(OPTIONS, epochs=1), state_path=state)
    other = dataclasses.replace(TINY, nz=5)
    with pytest.raises(CardioInputError, match="cannot resume with a different config"):
        train_label_vae(train, val, other, OPTIONS, resume=state)


def test_pipeline_writes_model_and_state_with_summary_and_atlas(tmp_path):
    out = tmp_path / "vae.safetensors"
    options = dataclasses.replace(OPTIONS, epochs=1, val_fraction=0.25)
    result = train_label_vae_on_subjects(
        make_subjects(8), out, TINY, options, summary={"command": "x"}, spacing_mm=3.0
    )
    _model, checkpoint = load_label_vae(out)
    training = checkpoint.extra["training"]
    assert training["command"] == "x"
    assert training["n_subjects"] == 8
    assert training["n_val_subjects"] == 2
    assert len(training["val_subjects"]) == 2
    assert set(training["final_val_dice"]) == {"lv", "myo", "rv", "mean"}
    assert checkpoint.extra["grid"] == {"size": 32, "spacing_mm": 3.0, "frame": "anatomical"}
    assert not any(k.startswith("optim.") for k in checkpoint.tensors)  # slim model file
    state = load_checkpoint(state_path_for(out))
    assert any(k.startswith("optim.") for k in state.tensors)
    assert state_path_for(out).name == "vae.state.safetensors"
    if "atlas" in checkpoint.extra:  # present once engine.label_vae is installed
        assert checkpoint.extra["atlas"]["nz"] == TINY.nz
    assert result.extra == checkpoint.extra


def test_reconstruction_dice_is_per_stack_and_in_range(slices):
    _, val = slices
    scores = reconstruction_dice(build_label_vae(TINY), val)
    assert set(scores) == {"lv", "myo", "rv", "mean"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert scores["mean"] == pytest.approx(np.mean([scores["lv"], scores["myo"], scores["rv"]]))


def test_optimizer_state_round_trips_through_tensors_and_json():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tensors, meta = optimizer_state_tensors(optimizer)
    assert all(k.startswith("optim.state.") for k in tensors)
    fresh = torch.optim.Adam(model.parameters(), lr=1.0)
    restore_optimizer_state(fresh, tensors, meta)
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9)
    assert fresh.param_groups[0]["lr"] == 0.1
    for a, b in zip(
        optimizer.state_dict()["state"].values(), fresh.state_dict()["state"].values(), strict=True
    ):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_schedules_and_batches():
    assert [linear_ramp(p, 2) for p in (0, 1, 2, 5)] == [0.0, 0.5, 1.0, 1.0]
    assert linear_ramp(0, 0) == 1.0
    assert [round(decay_factor(e, 8, 2), 3) for e in range(8)] == [1] * 6 + [0.667, 0.333]
    assert [should_checkpoint(e, 3, 7) for e in range(7)] == [0, 0, 1, 0, 0, 1, 1]
    batches = batch_indices(10, 4, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4]
    assert sorted(torch.cat(batch_indices(10, 4, None, drop_last=False)).tolist()) == list(
        range(10)
    )
    assert [len(b) for b in batch_indices(3, 8, None)] == [3]
