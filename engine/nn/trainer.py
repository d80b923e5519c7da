"""One training loop for every network: epochs, resume, validation, early stopping, progress,
checkpoints, on one process or on several (torchrun, see engine/nn/distributed.py).

A method (label VAE, SPADE, CHeart) supplies a :class:`Method`: its step (one update on a batch
of item indices, under ``autocast`` of the precision policy), its validation, its epoch record
and how it writes its files (atomically, through engine/nn/checkpoint.py). The Trainer owns the
rest: every epoch reseeds its random streams from (seed, epoch) so that a resumed run continues
exactly, batches are shuffled from that seed (each rank its DistributedSampler share), and the
model file follows the best validation score, with early stopping after ``patience``
validations without a better one. Only rank 0 validates, reports and writes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn import distributed
from cardio_explorer.engine.nn.training import (
    EpochLosses,
    batch_indices,
    decay_factor,
    linear_ramp,
    optimise_epoch,
    reseed_epoch,
    should_checkpoint,
    should_validate,
)

log = logging.getLogger(__name__)

Scores = dict[str, float]


@dataclass(frozen=True)
class Schedule:
    """When things happen in a run; epochs count from 0 here and from 1 in records and files.

    validate_every / checkpoint_every: after every N-th epoch and after the last (0: the last
    only). patience: stop after this many validations without a better score (0: never).
    """

    epochs: int
    batch_size: int
    seed: int
    checkpoint_every: int = 0
    validate_every: int = 0
    patience: int = 0
    progress: bool = True
    desc: str = "epoch"
    postfix_every: int = 1


@dataclass
class Progress:
    """Where a run stands: its history and its best validation so far (saved in state files)."""

    history: list[Any] = field(default_factory=list)
    epochs_done: int = 0
    best_epoch: int = 0
    best_scores: Scores | None = None
    since_best: int = 0
    best_score: float = -math.inf
    stopped_early: bool = False
    last_scores: Scores | None = None


class Method(Protocol):
    """What one network's training gives the :class:`Trainer`."""

    has_validation: bool

    def begin_epoch(self, epoch: int, n_steps: int) -> None:
        """Set this epoch's schedules (learning rate, KL weight) and put the model in train mode."""

    def step(
        self, epoch: int, step: int, idx: torch.Tensor, data_rng: torch.Generator
    ) -> Sequence[torch.Tensor]:
        """One update on the items ``idx``; returns the loss terms (the first is the total)."""

    def postfix(self, epoch: int, step: int, means: list[float]) -> dict[str, str]:
        """Progress-bar labels from the running means of the loss terms."""

    def validate(self, epoch: int) -> Scores:
        """Validation scores (higher 'mean' is better); only called on rank 0."""

    def record(self, epoch: int, losses: EpochLosses, scores: Scores | None) -> Any:
        """The history entry of one epoch."""

    def save_best(self, progress: Progress) -> None:
        """Write the model file after a better validation (rank 0 only)."""

    def save_state(self, progress: Progress) -> None:
        """Write the resumable state file (rank 0 only)."""


@dataclass
class Trainer:
    """Runs a :class:`Method` over ``n_items`` training items on the given schedule.

    ``optimizer``: the one optimizer the Trainer steps after each ``Method.step`` (backward of
    the total, optional adaptive clipping, a step skipped on a non-finite gradient); None when
    the method updates its networks itself (SPADE's alternating generator and discriminator).
    """

    method: Method
    schedule: Schedule
    n_items: int
    optimizer: torch.optim.Optimizer | None = None
    grad_clip: Callable[[Any], float] | None = None
    score: Callable[[Scores], float] = field(default=lambda s: s["mean"])

    def __post_init__(self) -> None:
        if self.n_items < distributed.world_size():
            raise CardioInputError(
                "training data",
                f"{self.n_items} items cannot be shared by {distributed.world_size()} processes",
            )

    def batches(self, epoch: int, data_rng: torch.Generator) -> list[torch.Tensor]:
        """This epoch's batches of item indices (this rank's share under torchrun)."""
        s = self.schedule
        if not distributed.is_distributed():
            return batch_indices(self.n_items, s.batch_size, data_rng)
        order = distributed.epoch_order(self.n_items, s.seed, epoch)
        # Every rank holds the same share, so they all take the same number of steps; a final
        # partial batch is dropped unless it is the only one, as on one process.
        batches = list(torch.split(order, s.batch_size))
        if len(batches) > 1 and len(batches[-1]) < s.batch_size:
            batches.pop()
        return batches

    def run(
        self, progress: Progress | None = None, on_epoch: Callable[[Any], None] | None = None
    ) -> Progress:
        """Train from ``progress.epochs_done`` (a resumed run) to the schedule's last epoch."""
        progress = progress or Progress()
        s, method, main = self.schedule, self.method, distributed.is_main()
        for epoch in range(progress.epochs_done, s.epochs):
            data_rng = reseed_epoch(s.seed, epoch, distributed.rank())
            batches = self.batches(epoch, data_rng)
            method.begin_epoch(epoch, len(batches))
            losses = optimise_epoch(
                batches,
                lambda step, idx, e=epoch, g=data_rng: method.step(e, step, idx, g),
                self.optimizer,
                desc=f"{s.desc} {epoch + 1}/{s.epochs}",
                progress=s.progress and main,
                postfix=lambda step, means, e=epoch: method.postfix(e, step, means),
                postfix_every=s.postfix_every,
                grad_clip=self.grad_clip,
            )
            scores = None
            improved = False
            if method.has_validation and should_validate(epoch, s.validate_every, s.epochs):
                scores = distributed.broadcast(method.validate(epoch) if main else None)
                progress.last_scores = scores
                if self.score(scores) > progress.best_score:
                    progress.best_scores, progress.best_epoch = scores, epoch + 1
                    progress.best_score = self.score(scores)
                    improved, progress.since_best = True, 0
                else:
                    progress.since_best += 1
            elif not method.has_validation:
                improved, progress.best_epoch = True, epoch + 1
            record = method.record(epoch, losses, scores)
            progress.history.append(record)
            progress.epochs_done = epoch + 1
            if improved and main:
                method.save_best(progress)
            done = epoch + 1 == s.epochs
            if s.patience and method.has_validation and progress.since_best >= s.patience:
                log.info(
                    "early stop after epoch %d: no better validation for %d validations "
                    "(best %.4f at epoch %d)",
                    epoch + 1,
                    progress.since_best,
                    progress.best_score,
                    progress.best_epoch,
                )
                progress.stopped_early = done = True
            if progress.stopped_early or should_checkpoint(epoch, s.checkpoint_every, s.epochs):
                if main:
                    method.save_state(progress)
                distributed.barrier()
            if on_epoch and main:  # after the files, so an interrupt here loses nothing
                on_epoch(record)
            if done:
                break
        return progress


class BetaVaeSchedule:
    """The schedules both beta-VAEs (label VAE, CHeart) share: the KL weight ramps up over
    ``warmup_epochs`` and the learning rate decays linearly over the last ``decay_epochs``."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        lr: float,
        beta: float,
        warmup_epochs: float,
        epochs: int,
        decay_epochs: int,
    ) -> None:
        self.model, self.optimizer = model, optimizer
        self.base_lr, self.lr, self.beta = lr, lr, beta
        self.warmup_epochs, self.epochs, self.decay_epochs = warmup_epochs, epochs, decay_epochs
        self.n_steps = 1

    def beta_at(self, epoch: int, step: int) -> float:
        """KL weight at a step of an epoch (steps count as fractions of an epoch)."""
        return self.beta * linear_ramp(epoch + step / self.n_steps, self.warmup_epochs)

    def begin_epoch(self, epoch: int, n_steps: int) -> None:
        """This epoch's learning rate; the model in train mode."""
        self.n_steps = n_steps
        self.lr = self.base_lr * decay_factor(epoch, self.epochs, self.decay_epochs)
        for group in self.optimizer.param_groups:
            # a group may learn faster than the rest (e.g. new layers in a fine-tune)
            group["lr"] = self.lr * group.get("lr_scale", 1.0)
        self.model.train()
