"""Bench: one optimiser step of each lean network (label VAE, SPADE, CHeart) on a fixed batch.

The same forward, loss and backward as their training loops: the forward under the precision
policy's autocast, the loss in fp32, fp32 master weights. Random weights: the arithmetic is
what a trained network costs too. The fp32 / bf16 ratio is the training speed-up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from cardio_explorer.app.commands.bench import BenchResult, summarise, time_call
from cardio_explorer.app.commands.bench_spade import bench_labels
from cardio_explorer.engine.cheart.config import LEAN as CHEART_LEAN
from cardio_explorer.engine.cheart.config import N_CONDITIONS
from cardio_explorer.engine.cheart.loss import cheart_loss
from cardio_explorer.engine.cheart.network import CHeartNet
from cardio_explorer.engine.cheart.toy import toy_conditions, toy_sequence
from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.label_vae.network import build_label_vae
from cardio_explorer.engine.nn.onehot import one_hot
from cardio_explorer.engine.spade.config import LEAN as SPADE_LEAN
from cardio_explorer.engine.spade.network import SpadeModel
from cardio_explorer.engine.spade.training import SpadeTrainer, TrainSettings

LABEL_VAE_BATCH = 32
SPADE_BATCH = 16
CHEART_BATCH = 2
# Training steps take 0.1-2 s on 2 cores: a few timed steps give a stable median.
MAX_STEPS = 5


def _label_vae_step(device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    model = build_label_vae("lean").to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    labels = torch.from_numpy(bench_labels(model.config.size, LABEL_VAE_BATCH).data).long()
    labels = labels.to(device)

    def step() -> None:
        with autocast(device):
            out = model(one_hot(labels, model.config.n_classes))
        loss = model.loss(out, labels).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _spade_step(device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    trainer = SpadeTrainer(SpadeModel(SPADE_LEAN, with_discriminator=True), TrainSettings(), device)
    labels = torch.from_numpy(bench_labels(SPADE_LEAN.image_size, SPADE_BATCH).data).long()
    images = labels.float() / 1.5 - 1.0
    labels, images = labels.to(device), images.to(device)
    return lambda: trainer.update(labels, images)


def _cheart_step(device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    config = CHEART_LEAN
    net = CHeartNet(config).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    conditions = [toy_conditions(rng) for _ in range(CHEART_BATCH)]
    frames = [
        toy_sequence(c, config.grid, config.spacing, config.n_frames, rng) for c in conditions
    ]
    labels = torch.from_numpy(np.stack(frames)).long().to(device)
    # Standardised conditions: the step's cost does not depend on their values.
    cond = torch.zeros((CHEART_BATCH, N_CONDITIONS), device=device)

    def step() -> None:
        with autocast(device):
            output = net(labels[:, 0], cond)
        loss = cheart_loss(
            output, labels, config.beta, config.motion_smoothness, config.motion_dice
        ).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(device: torch.device, repeats: int) -> list[BenchResult]:
    """Median time of one training step per lean network (fixed batch, random weights)."""
    steps = (
        (f"train label VAE lean: one step, batch {LABEL_VAE_BATCH}", _label_vae_step),
        (f"train SPADE lean: one G + D step, batch {SPADE_BATCH}", _spade_step),
        (f"train CHeart lean: one step, batch {CHEART_BATCH} x 20 frames", _cheart_step),
    )
    results = []
    for name, build in steps:
        step = build(device)
        sync = torch.cuda.synchronize if device.type == "cuda" else None
        times = time_call(step, min(repeats, MAX_STEPS), warmup=2, sync=sync)
        results.append(summarise(name, device, times))
    return results
