"""A small 2D U-Net segmenter: the judge of label fidelity (no human eye, no downloaded network).

Written here rather than taken from MONAI (``BasicUNet``): twenty lines, BatchNorm so that eval
mode is per slice, and nothing to pin down across MONAI versions. It is trained on real
image/label slices and then reads both real and synthesised images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.onehot import one_hot
from cardio_explorer.engine.nn.training import (
    batch_indices,
    epoch_seed,
    progress_bar,
    torch_generator,
)
from cardio_explorer.engine.spade.data import ImageLabelSlices


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class TinyUNet(nn.Module):
    """Image (B, 1, H, W) -> label logits (B, n_labels, H, W); H, W divisible by 2**depth."""

    def __init__(self, n_labels: int = 4, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        chans = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            _double_conv(1 if i == 0 else chans[i - 1], chans[i]) for i in range(depth + 1)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in range(depth)
        )
        self.merge = nn.ModuleList(_double_conv(2 * chans[i], chans[i]) for i in range(depth))
        self.head = nn.Conv2d(chans[0], n_labels, 1)
        self.depth = depth

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> logits (B, n_labels, H, W)."""
        skips = []
        x = image
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else functional.max_pool2d(x, 2))
            skips.append(x)
        for i in reversed(range(self.depth)):
            x = self.merge[i](torch.cat([self.up[i](x), skips[i]], dim=1))
        return self.head(x)


LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class SegmenterSettings:
    """Training settings of the judge segmenter.

    A budget of optimiser steps rather than epochs, so the cost does not grow with the cohort:
    600 steps of 16 slices take about 6 minutes on 2 CPU cores and seconds on a GPU.
    """

    steps: int = 600
    batch_size: int = 16
    lr: float = 2e-3
    base: int = 16
    seed: int = 0
    # "cosine" anneals the rate to zero over the steps: a constant rate leaves the last weights
    # wherever the last noisy batches put them (README, issue 22)
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise CardioInputError(
                "segmenter settings", "need at least 1 step and a batch size of at least 2"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise CardioInputError(
                "learning-rate schedule",
                f"{self.lr_schedule!r} is unknown; choose one of {', '.join(LR_SCHEDULES)}",
            )


class SegmenterFit(NamedTuple):
    """The trained segmenter, its mean training loss per pass over the data and the learning
    rate its last step took."""

    model: TinyUNet
    losses: list[float]
    last_lr: float


def _soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    probs = logits.softmax(dim=1)[:, 1:]
    target = one_hot(labels, logits.shape[1])[:, 1:]
    inter = (probs * target).sum(dim=(0, 2, 3))
    total = probs.sum(dim=(0, 2, 3)) + target.sum(dim=(0, 2, 3))
    return 1.0 - ((2 * inter + 1.0) / (total + 1.0)).mean()


def train_segmenter(
    slices: ImageLabelSlices,
    settings: SegmenterSettings,
    device: torch.device,
    n_labels: int = 4,
    progress: bool = False,
) -> SegmenterFit:
    """Train a TinyUNet on real image/label slices with cross-entropy + soft Dice."""
    if len(slices) < 2:
        raise CardioInputError("segmenter data", f"needs at least 2 slices, got {len(slices)}")
    depth = 3
    if any(s % 2**depth for s in slices.size):
        raise CardioInputError("segmenter data", f"slice size {slices.size} not divisible by 8")
    torch.manual_seed(settings.seed)
    model = TinyUNet(n_labels, settings.base, depth).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    schedule = None
    if settings.lr_schedule == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps)
    labels_all = torch.from_numpy(slices.labels)
    images_all = torch.from_numpy(slices.images)
    batch = min(settings.batch_size, len(slices))
    losses: list[float] = []
    bar = progress_bar(settings.steps, "segmenter", progress, unit="step")
    step, epoch = 0, 0
    while step < settings.steps:
        order = torch_generator(epoch_seed(settings.seed, epoch))
        total, count = 0.0, 0
        for idx in batch_indices(len(slices), batch, order):
            if step == settings.steps:
                break
            labels = labels_all[idx].to(device).long()
            images = images_all[idx].to(device)[:, None]
            with autocast(device):
                logits = model(images)
            logits = logits.float()
            loss = functional.cross_entropy(logits, labels) + _soft_dice_loss(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            last_lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total, count, step = total + float(loss.detach()), count + 1, step + 1
            bar.update(1)
        losses.append(total / max(count, 1))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        epoch += 1
    bar.close()
    return SegmenterFit(model.eval(), losses, last_lr)


@torch.inference_mode()
def segment_slices(
    model: TinyUNet, images: np.ndarray, device: torch.device, batch_size: int = 32
) -> np.ndarray:
    """Label maps uint8 (N, H, W) of images float (N, H, W) in [-1, 1]."""
    model.eval()
    out = np.empty(images.shape, dtype=np.uint8)
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
        with autocast(device):
            logits = model(batch[:, None].float().to(device))
        out[start : start + batch_size] = logits.argmax(dim=1).to(torch.uint8).cpu().numpy()
    return out
