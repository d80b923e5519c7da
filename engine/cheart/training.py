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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cardio_explorer.engine.cheart.conditions import ConditionStats
from cardio_explorer.engine.cheart.config import LEAN, CHeartConfig
from cardio_explorer.engine.cheart.data import SequenceSet, load_sequences
from cardio_explorer.engine.cheart.model import CHeartModel, prepare_for_inference
from cardio_explorer.engine.cheart.network import CHeartLoss, CHeartNet, cheart_loss, save_cheart
from cardio_explorer.engine.cheart.options import EpochRecord, TrainOptions, TrainResult
from cardio_explorer.engine.cheart.validation import completion_dice
from cardio_explorer.engine.cheart.warm_start import warm_start
from cardio_explorer.engine.device import autocast, current_precision, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import file_sha256, load_checkpoint
from cardio_explorer.engine.nn.training import (
    batch_indices,
    decay_factor,
    linear_ramp,
    load_training_state,
    optimise_epoch,
    reseed_epoch,
    restore_training,
    should_checkpoint,
    should_validate,
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
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    history: list[EpochRecord] = []
    first_epoch, best_epoch, best_dice, best_score = 0, 0, None, -np.inf
    if checkpoint is not None and state is not None:
        first_epoch = restore_training(checkpoint, state, net, "net.", optimizer)
        history = [EpochRecord.from_dict(r) for r in state.get("history", [])]
        best_epoch = int(state.get("best_epoch", 0))
        best_dice = state.get("best_val_dice")
        best_score = best_dice["mean"] if best_dice else -np.inf
        log.info("resuming %s after epoch %d", resume, first_epoch)

    out_path = Path(out) if out is not None else None
    state_path = state_path_for(out_path) if out_path is not None else None
    base_summary = {
        **(summary or {}),
        "n_train": len(train),
        "n_val": len(val) if val is not None else 0,
        "val_subjects": list(val.subject_ids) if val is not None else [],
        "options": options.to_dict(),
        "device": describe(device),
        "precision": current_precision(device),
    }

    def write_model(epoch_done: int) -> None:
        if out_path is None:
            return
        info = {
            **base_summary,
            "best_epoch": epoch_done,
            "best_val_dice": best_dice,
            "history": [r.to_dict() for r in history],
        }
        save_cheart(out_path, net, _model_extra(stats, train, info))

    def write_state(epoch_done: int) -> None:
        if state_path is None:
            return
        tensors, train_state = training_state(
            optimizer,
            epoch_done,
            options.to_dict(),
            history,
            best_epoch=best_epoch,
            best_val_dice=best_dice,
        )
        extra = {"conditions": stats.to_dict(), "training_state": train_state}
        save_cheart(state_path, net, extra, tensors=tensors)

    labels_all = torch.from_numpy(train.labels)  # uint8 on the CPU; batches move to the device
    conditions_all = torch.from_numpy(stats.matrix(train.conditions))
    n_batches = len(batch_indices(len(train), batch_size))
    stopped_early = False
    since_best = 0
    if history:
        since_best = sum(1 for r in history if r.val_dice is not None and r.epoch > best_epoch)
    use_amp = options.mixed_precision

    def beta_at(epoch: int, step: int) -> float:
        return beta * linear_ramp(epoch + step / n_batches, options.beta_warmup_epochs)

    def loss_of(epoch: int, data_rng: torch.Generator, step: int, idx: torch.Tensor) -> CHeartLoss:
        labels = _shift(labels_all[idx].to(device), data_rng, options.shift_voxels)
        cond = conditions_all[idx].to(device)
        with autocast(device, enabled=use_amp):
            output = net(labels[:, 0], cond)
        return cheart_loss(output, labels, beta_at(epoch, step), config.motion_smoothness)

    def show(step: int, means: list[float]) -> dict[str, str]:
        loss, ce, kl = means
        return {"loss": f"{loss:.4f}", "ce": f"{ce:.4f}", "kl": f"{kl:.1f}"}

    for epoch in range(first_epoch, options.epochs):
        data_rng = reseed_epoch(options.seed, epoch)
        epoch_lr = lr * decay_factor(epoch, options.epochs, options.lr_decay_epochs)
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr
        net.train()
        batches = batch_indices(len(train), batch_size, data_rng)
        losses = optimise_epoch(
            batches,
            partial(loss_of, epoch, data_rng),
            optimizer,
            desc=f"epoch {epoch + 1}/{options.epochs}",
            progress=options.progress,
            postfix=show,
        )
        record = EpochRecord.from_losses(
            epoch + 1,
            losses,
            beta=beta_at(epoch, len(batches) - 1),  # the last step's
            lr=epoch_lr,
            sequences_per_s=losses.items_per_s,
        )
        improved = False
        has_val = val is not None and len(val) > 0
        if has_val and should_validate(epoch, options.validate_every, options.epochs):
            record.val_dice = completion_dice(net, val, stats, device)
            if record.val_dice["mean"] > best_score:
                best_score, best_dice, best_epoch = (
                    record.val_dice["mean"],
                    record.val_dice,
                    epoch + 1,
                )
                improved, since_best = True, 0
            else:
                since_best += 1
        elif not has_val:
            improved, best_epoch = True, epoch + 1
        history.append(record)
        if improved:
            write_model(epoch + 1)
        if on_epoch:
            on_epoch(record)
        done = epoch + 1 == options.epochs
        if options.patience and has_val and since_best >= options.patience:
            log.info(
                "early stop after epoch %d: no better validation Dice for %d "
                "validations (best %.4f at epoch %d)",
                epoch + 1,
                since_best,
                best_score,
                best_epoch,
            )
            stopped_early = done = True
        if stopped_early or should_checkpoint(epoch, options.checkpoint_every, options.epochs):
            write_state(epoch + 1)
        if done:
            break

    if out_path is not None and out_path.is_file():
        model = _with_fitted_prior(out_path, train, device)
    else:
        model = CHeartModel(
            net=prepare_for_inference(net, device),
            stats=stats,
            device=device,
            frame_duration_ms=train.frame_duration_ms,
            training=base_summary,
        )
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        best_val_dice=best_dice,
        stopped_early=stopped_early,
        device=device,
        model_path=out_path,
        state_path=state_path,
        seconds=time.perf_counter() - started,
    )


def _check_start(resume: str | Path | None, init_from: str | Path | None) -> None:
    if resume is not None and init_from is not None:
        raise CardioInputError("--init-from", "a resumed run already has its weights")


def _with_fitted_prior(path: Path, train: SequenceSet, device: torch.device) -> CHeartModel:
    """Fit p(z0 | c) to the training subjects under the best model, store it in ``path``."""
    from cardio_explorer.engine.cheart.model import load_model
    from cardio_explorer.engine.cheart.prior import prior_for_sequences

    model = load_model(path, device)
    try:
        model.prior = prior_for_sequences(
            model.net, model.stats, train.labels[:, 0], train.conditions, train.groups, device
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
