"""CHeart training settings (TrainOptions), the per-epoch record and the result of a run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cardio_explorer.engine.cheart.model import CHeartModel
from cardio_explorer.engine.limits import MAX_BATCH
from cardio_explorer.engine.nn.training import BetaVaeEpochRecord, check_options


@dataclass(frozen=True)
class TrainOptions:
    """Run settings; batch_size, lr and beta None take the config's values.

    patience: stop after this many validations without a better mean Dice (0: never stop early).
    lr_decay_epochs: the learning rate decays linearly to 0 over the last N epochs (0: constant).
    shift_voxels: random whole-sequence shifts (same for all frames) as augmentation.
    """

    epochs: int = 500
    batch_size: int | None = None
    lr: float | None = None
    lr_decay_epochs: int = 0
    beta: float | None = None
    beta_warmup_epochs: float = 10.0
    seed: int = 0
    device: str = "auto"
    val_fraction: float = 0.1
    patience: int = 30
    validate_every: int = 1
    checkpoint_every: int = 5
    shift_voxels: int = 2
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        checks = {
            "--epochs": self.epochs >= 1,
            "--batch-size": self.batch_size is None or 1 <= self.batch_size <= MAX_BATCH,
            "--lr": self.lr is None or self.lr > 0,
            "--lr-decay-epochs": 0 <= self.lr_decay_epochs <= self.epochs,
            "--beta": self.beta is None or self.beta >= 0,
            "--beta-warmup-epochs": self.beta_warmup_epochs >= 0,
            "--patience": self.patience >= 0,
            "--val-fraction": 0 <= self.val_fraction < 1,
            "--validate-every": self.validate_every >= 1,
            "--checkpoint-every": self.checkpoint_every >= 0,
            "--shift-voxels": self.shift_voxels >= 0,
        }
        check_options(self, checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return dataclasses.asdict(self)


@dataclass
class EpochRecord(BetaVaeEpochRecord):
    """One epoch: mean losses, KL weight, learning rate, speed and validation Dice (when run)."""

    sequences_per_s: float
    val_dice: dict[str, float] | None = None


@dataclass
class TrainResult:
    """A finished run: the best model ready for inference, its history and where it went."""

    model: CHeartModel
    history: list[EpochRecord]
    best_epoch: int
    best_val_dice: dict[str, float] | None
    stopped_early: bool
    device: torch.device
    model_path: Path | None = None
    state_path: Path | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
