"""Training CHeart on sequences: validation Dice, early stopping, checkpoints and resume.

Two files come out of a run, as for the label VAE: the *model* file (best weights by
validation Dice, condition statistics and training ranges, training summary), which is the one
to ship and load with :func:`load_model`; and the *state* file beside it
(``<name>.state.safetensors``: last weights, Adam state, epoch, best so far, history), which
``resume`` continues from exactly: every epoch reseeds its random streams from (seed, epoch).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cardio_explorer.engine.cheart.conditions import ConditionStats
from cardio_explorer.engine.cheart.config import LEAN, CHeartConfig
from cardio_explorer.engine.cheart.data import SequenceSet, load_sequences
from cardio_explorer.engine.cheart.loss import CHeartLoss, cheart_loss
from cardio_explorer.engine.cheart.model import CHeartModel, load_model, prepare_for_inference
from cardio_explorer.engine.cheart.motion_code import parameter_groups, sequence_motion_codes
from cardio_explorer.engine.cheart.network import CHeartNet, save_cheart
from cardio_explorer.engine.cheart.options import EpochRecord, TrainOptions, TrainResult
from cardio_explorer.engine.cheart.prior import prior_for_sequences
from cardio_explorer.engine.cheart.validation import completion_dice
from cardio_explorer.engine.cheart.warm_start import warm_start
from cardio_explorer.engine.device import autocast, current_precision, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn import distributed
from cardio_explorer.engine.nn.checkpoint import file_sha256, load_checkpoint
from cardio_explorer.engine.nn.trainer import BetaVaeSchedule, Progress, Schedule, Trainer
from cardio_explorer.engine.nn.training import (
    EpochLosses,
    load_training_state,
    restore_training,
    state_path_for,
    training_device,
    training_state,
)

log = logging.getLogger(__name__)


def _shift(labels: torch.Tensor, generator: torch.Generator, max_shift: int) -> torch.Tensor:
    """Roll each sequence by a random whole-voxel shift (the same for all its frames)."""
    if max_shift <= 0:
        return labels
    shifted = torch.empty_like(labels)
    for i in range(labels.shape[0]):
        dz, dy, dx = torch.randint(-max_shift, max_shift + 1, (3,), generator=generator).tolist()
        shifted[i] = torch.roll(labels[i], shifts=(dz, dy, dx), dims=(1, 2, 3))
    return shifted


def _model_extra(
    stats: ConditionStats, train: SequenceSet, summary: dict[str, Any]
) -> dict[str, Any]:
    return {
        "conditions": stats.to_dict(),
        "frame_duration_ms": train.frame_duration_ms,
        "training": summary,
    }


class _CHeartMethod(BetaVaeSchedule):
    """CHeart's part of a training run: its step, validation, records and its two files."""

    def __init__(
        self,
        net: CHeartNet,
        optimizer: torch.optim.Optimizer,
        train: SequenceSet,
        val: SequenceSet | None,
        stats: ConditionStats,
        options: TrainOptions,
        lr: float,
        beta: float,
        device: torch.device,
    ) -> None:
        super().__init__(
            net,
            optimizer,
            lr=lr,
            beta=beta,
            warmup_epochs=options.beta_warmup_epochs,
            epochs=options.epochs,
            decay_epochs=options.lr_decay_epochs,
        )
        self.net, self.options = net, options
        self.forward = distributed.wrap(net, device)  # DDP under torchrun
        self.train, self.val, self.stats, self.device = train, val, stats, device
        self.labels = torch.from_numpy(train.labels)  # uint8 on the CPU; batches move
        self.conditions = torch.from_numpy(stats.matrix(train.conditions))
        self.has_validation = val is not None and len(val) > 0
        self.out_path: Path | None = None
        self.summary: dict[str, Any] = {}

    def step(
        self, epoch: int, step: int, idx: torch.Tensor, data_rng: torch.Generator
    ) -> CHeartLoss:
        labels = _shift(self.labels[idx].to(self.device), data_rng, self.options.shift_voxels)
        cond = self.conditions[idx].to(self.device)
        with autocast(self.device):
            output = self.forward(labels[:, 0], cond, sequence=labels)
        beta = self.beta_at(epoch, step)
        config = self.net.config
        return cheart_loss(
            output,
            labels,
            beta,
            config.motion_smoothness,
            config.motion_dice,
            config.motion_code_beta,
        )

    def postfix(self, epoch: int, step: int, means: list[float]) -> dict[str, str]:
        loss, ce, kl = means
        return {"loss": f"{loss:.4f}", "ce": f"{ce:.4f}", "kl": f"{kl:.1f}"}

    def validate(self, epoch: int) -> dict[str, float]:
        return completion_dice(self.net, self.val, self.stats, self.device)

    def record(
        self, epoch: int, losses: EpochLosses, scores: dict[str, float] | None
    ) -> EpochRecord:
        record = EpochRecord.from_losses(
            epoch + 1,
            losses,
            beta=self.beta_at(epoch, self.n_steps - 1),  # the last step's
            lr=self.lr,
            sequences_per_s=losses.items_per_s,
        )
        record.val_dice = scores
        return record

    def save_best(self, progress: Progress) -> None:
        if self.out_path is None:
            return
        info = {
            **self.summary,
            "best_epoch": progress.best_epoch,
            "best_val_dice": progress.best_scores,
            "history": [r.to_dict() for r in progress.history],
        }
        save_cheart(self.out_path, self.net, _model_extra(self.stats, self.train, info))

    def save_state(self, progress: Progress) -> None:
        if self.out_path is None:
            return
        tensors, train_state = training_state(
            self.optimizer,
            progress.epochs_done,
            self.options.to_dict(),
            progress.history,
            best_epoch=progress.best_epoch,
            best_val_dice=progress.best_scores,
        )
        extra = {"conditions": self.stats.to_dict(), "training_state": train_state}
        save_cheart(state_path_for(self.out_path), self.net, extra, tensors=tensors)


def train_cheart(
    train: SequenceSet,
    val: SequenceSet | None,
    config: CHeartConfig | None = None,
    options: TrainOptions | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    init_from: str | Path | None = None,
    summary: dict[str, Any] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train (or resume) CHeart; writes the best model to ``out`` and the state beside it.

    config: None takes the resumed state's config, else LEAN. The model file is rewritten
    whenever validation Dice improves (every epoch without validation data). ``init_from``: a
    CHeart checkpoint whose weights start a new run (see ``warm_start``).
    """
    _check_start(resume, init_from)
    options = options or TrainOptions()
    started = time.perf_counter()
    device = training_device(options.device, options.threads)
    checkpoint = state = None
    if resume is not None:
        checkpoint, state = load_training_state(Path(resume), "cheart")
        saved = CHeartConfig.from_dict(checkpoint.config)
        if config is not None and config != saved:
            raise CardioInputError(
                resume,
                "was trained with another config; resume without --config or with the same one",
            )
        config = saved
    config = config or LEAN
    grid = tuple(train.labels.shape[2:])
    if grid != tuple(config.grid) or train.labels.shape[1] != config.n_frames:
        raise CardioInputError(
            "training sequences",
            f"are {train.labels.shape[1]} frames of {grid}, the config "
            f"needs {config.n_frames} frames of {tuple(config.grid)}",
        )
    # A resumed run keeps the normalisation it started with.
    stats = (
        ConditionStats.from_dict(checkpoint.extra["conditions"])
        if checkpoint is not None
        else ConditionStats.from_conditions(train.conditions)
    )
    batch_size = options.batch_size or config.batch_size
    lr = options.lr or config.lr
    beta = config.beta if options.beta is None else options.beta

    torch.manual_seed(options.seed)
    net = CHeartNet(config)
    if init_from is not None:
        zeroed = warm_start(net, init_from)
        log.info("weights from %s (started at zero: %s)", init_from, zeroed or "none")
    net = net.to(device)
    optimizer = torch.optim.Adam(parameter_groups(net), lr=lr)
    progress = Progress()
    if checkpoint is not None and state is not None:
        progress.epochs_done = restore_training(checkpoint, state, net, "net.", optimizer)
        progress.history = [EpochRecord.from_dict(r) for r in state.get("history", [])]
        progress.best_epoch = int(state.get("best_epoch", 0))
        progress.best_scores = state.get("best_val_dice")
        if progress.best_scores:
            progress.best_score = progress.best_scores["mean"]
        progress.since_best = sum(
            1 for r in progress.history if r.val_dice is not None and r.epoch > progress.best_epoch
        )
        log.info("resuming %s after epoch %d", resume, progress.epochs_done)

    method = _CHeartMethod(net, optimizer, train, val, stats, options, lr, beta, device)
    method.out_path = Path(out) if out is not None else None
    method.summary = {
        **(summary or {}),
        "n_train": len(train),
        "n_val": len(val) if val is not None else 0,
        "val_subjects": list(val.subject_ids) if val is not None else [],
        "options": options.to_dict(),
        "device": describe(device),
        "processes": distributed.world_size(),
        "precision": current_precision(device),
    }
    schedule = Schedule(
        epochs=options.epochs,
        batch_size=batch_size,
        seed=options.seed,
        checkpoint_every=options.checkpoint_every,
        validate_every=options.validate_every,
        patience=options.patience,
        progress=options.progress,
    )
    Trainer(method, schedule, len(train), optimizer).run(progress, on_epoch)

    out_path = method.out_path
    if out_path is not None and out_path.is_file() and distributed.is_main():
        model = _with_fitted_prior(out_path, train, device)
    else:
        model = CHeartModel(
            net=prepare_for_inference(net, device),
            stats=stats,
            device=device,
            frame_duration_ms=train.frame_duration_ms,
            training=method.summary,
        )
    return TrainResult(
        model=model,
        history=progress.history,
        best_epoch=progress.best_epoch,
        best_val_dice=progress.best_scores,
        stopped_early=progress.stopped_early,
        device=device,
        model_path=out_path,
        state_path=state_path_for(out_path) if out_path is not None else None,
        seconds=time.perf_counter() - started,
    )


def _check_start(resume: str | Path | None, init_from: str | Path | None) -> None:
    if resume is not None and init_from is not None:
        raise CardioInputError("--init-from", "a resumed run already has its weights")


def _with_fitted_prior(path: Path, train: SequenceSet, device: torch.device) -> CHeartModel:
    """Fit p(z0 | c) to the training subjects under the best model, store it in ``path``."""
    model = load_model(path, device)
    try:
        codes = None
        if model.config.motion_code:
            codes = sequence_motion_codes(train.labels)
        model.prior = prior_for_sequences(
            model.net,
            model.stats,
            train.labels[:, 0],
            train.conditions,
            train.groups,
            device,
            codes,
        )
    except CardioInputError as error:
        log.warning("no latent prior (generation samples z ~ N(0, I)): %s", error)
        return model
    model.save(path)
    log.info("fitted the latent prior on %d training subjects", len(train))
    return dataclasses.replace(model, sha256=file_sha256(path))


def train_cheart_on_folder(
    data: str | Path,
    out: str | Path,
    config: CHeartConfig | None = None,
    options: TrainOptions | None = None,
    *,
    resume: str | Path | None = None,
    init_from: str | Path | None = None,
    summary: dict[str, Any] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Read a dense cohort, split it (seeded), train and write ``out`` (+ its state file)."""
    _check_start(resume, init_from)
    options = options or TrainOptions()
    if resume is not None and config is None:
        config = CHeartConfig.from_dict(load_checkpoint(resume, "cheart").config)
    config = config or LEAN
    sequences = load_sequences(
        data, config.grid, config.spacing, config.n_frames, progress=options.progress
    )
    if len(sequences) < 2 and options.val_fraction > 0:
        raise CardioInputError(data, "needs at least 2 subjects (training and validation)")
    if options.val_fraction > 0:
        train, val = sequences.split(options.val_fraction, options.seed)
    else:
        train, val = sequences, None
    info = {**(summary or {}), "data": str(data), "n_subjects": len(sequences)}
    return train_cheart(
        train,
        val,
        config,
        options,
        out=out,
        resume=resume,
        init_from=init_from,
        summary=info,
        on_epoch=on_epoch,
    )
