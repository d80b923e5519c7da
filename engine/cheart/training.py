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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cardio_explorer.engine.cheart.conditions import ConditionStats
from cardio_explorer.engine.cheart.data import SequenceSet, load_sequences
from cardio_explorer.engine.cheart.model import CHeartModel, prepare_for_inference
from cardio_explorer.engine.device import autocast, choose_device, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.metrics.overlap import dice_scores
from cardio_explorer.engine.models.cheart import (
    CHeartConfig,
    CHeartNet,
    cheart_loss,
    save_cheart,
)
from cardio_explorer.engine.models.checkpoint import load_checkpoint
from cardio_explorer.engine.training.loop import (
    batch_indices,
    configure_cpu_threads,
    epoch_seed,
    finite_or_none,
    linear_ramp,
    optimizer_state_tensors,
    progress_bar,
    restore_optimizer_state,
    torch_generator,
)

log = logging.getLogger(__name__)

STRUCTURES = ("lv", "myo", "rv")
_STREAM_DATA, _STREAM_NOISE = 0, 1
_EVAL_BATCH = 4


@dataclass(frozen=True)
class TrainOptions:
    """Run settings; batch_size, lr and beta None take the config's values.

    patience: stop after this many validations without a better mean Dice (0: never stop early).
    shift_voxels: random whole-sequence shifts (same for all frames) as augmentation.
    """

    epochs: int = 500
    batch_size: int | None = None
    lr: float | None = None
    beta: float | None = None
    beta_warmup_epochs: float = 10.0
    seed: int = 0
    device: str = "auto"
    val_fraction: float = 0.1
    patience: int = 30
    validate_every: int = 1
    checkpoint_every: int = 5
    shift_voxels: int = 2
    mixed_precision: bool = True
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        checks = {
            "--epochs": self.epochs >= 1,
            "--batch-size": self.batch_size is None or self.batch_size >= 1,
            "--lr": self.lr is None or self.lr > 0,
            "--beta": self.beta is None or self.beta >= 0,
            "--patience": self.patience >= 0,
            "--val-fraction": 0 <= self.val_fraction < 1,
            "--validate-every": self.validate_every >= 1,
            "--checkpoint-every": self.checkpoint_every >= 0,
            "--shift-voxels": self.shift_voxels >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                value = getattr(self, name[2:].replace("-", "_"))
                raise CardioInputError(name, f"invalid value {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return dataclasses.asdict(self)


@dataclass
class EpochRecord:
    """One epoch: mean losses, KL weight, learning rate, speed and validation Dice (when run)."""

    epoch: int
    loss: float
    ce: float
    kl: float
    beta: float
    lr: float
    seconds: float
    sequences_per_s: float
    val_dice: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (rounded; NaN becomes None)."""
        out: dict[str, Any] = {
            k: finite_or_none(round(v, 6)) if isinstance(v, float) else v
            for k, v in dataclasses.asdict(self).items()
            if k != "val_dice"
        }
        if self.val_dice is not None:
            out["val_dice"] = {k: round(v, 5) for k, v in self.val_dice.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        """Inverse of :meth:`to_dict`."""
        values = {k: float("nan") if v is None and k != "val_dice" else v for k, v in data.items()}
        return cls(**values)


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


def state_path_for(out: str | Path) -> Path:
    """The resumable-state file beside a model file: x.safetensors -> x.state.safetensors."""
    out = Path(out)
    return out.with_name(f"{out.name.removesuffix('.safetensors')}.state.safetensors")


@torch.inference_mode()
def completion_dice(
    net: CHeartNet, sequences: SequenceSet, stats: ConditionStats, device: torch.device
) -> dict[str, float]:
    """Mean over sequences of the Dice pooled over all frames, completing each from its ED."""
    was_training = net.training
    net.eval()
    scores = []
    try:
        labels = torch.from_numpy(sequences.labels)
        for start in range(0, len(sequences), _EVAL_BATCH):
            batch = labels[start : start + _EVAL_BATCH].to(device)
            cond = torch.from_numpy(
                stats.matrix(sequences.conditions[start : start + len(batch)])
            ).to(device)
            with autocast(device):
                out = net(batch[:, 0], cond, sample=False)
            predicted = out.logits.argmax(dim=2).to(torch.uint8).cpu().numpy()
            for p, r in zip(predicted, sequences.labels[start : start + len(batch)], strict=True):
                scores.append(dice_scores(p, r))
    finally:
        net.train(was_training)
    mean = np.mean(scores, axis=0)
    result = {name: float(v) for name, v in zip(STRUCTURES, mean, strict=True)}
    result["mean"] = float(mean.mean())
    return result


def _shift(labels: torch.Tensor, generator: torch.Generator, max_shift: int) -> torch.Tensor:
    """Roll each sequence by a random whole-voxel shift (the same for all its frames)."""
    if max_shift <= 0:
        return labels
    shifted = torch.empty_like(labels)
    for i in range(labels.shape[0]):
        dz, dy, dx = torch.randint(-max_shift, max_shift + 1, (3,), generator=generator).tolist()
        shifted[i] = torch.roll(labels[i], shifts=(dz, dy, dx), dims=(1, 2, 3))
    return shifted


def _resume(path: Path) -> tuple[Any, dict[str, Any]]:
    checkpoint = load_checkpoint(path, expected_kind="cheart")
    state = checkpoint.extra.get("training_state")
    if not isinstance(state, dict):
        raise CardioInputError(
            path, "holds no training state (resume from the .state.safetensors file of a run)"
        )
    return checkpoint, state


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
    summary: dict[str, Any] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train (or resume) CHeart; writes the best model to ``out`` and the state beside it.

    config: None takes the resumed state's config, else LEAN. The model file is rewritten
    whenever validation Dice improves (every epoch without validation data).
    """
    options = options or TrainOptions()
    started = time.perf_counter()
    device = choose_device(options.device)
    if device.type == "cpu":
        configure_cpu_threads(options.threads)
    checkpoint = state = None
    if resume is not None:
        checkpoint, state = _resume(Path(resume))
        saved = CHeartConfig.from_dict(checkpoint.config)
        if config is not None and config != saved:
            raise CardioInputError(
                resume,
                "was trained with another config; resume without --config or with the same one",
            )
        config = saved
    config = config or CHeartConfig()
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
    net = CHeartNet(config).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    history: list[EpochRecord] = []
    first_epoch, best_epoch, best_dice, best_score = 0, 0, None, -np.inf
    if checkpoint is not None and state is not None:
        checkpoint.load_into(net, "net.")
        restore_optimizer_state(optimizer, checkpoint.tensors, state["optimizer"])
        first_epoch = int(state["epochs_done"])
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
        tensors, optimizer_meta = optimizer_state_tensors(optimizer)
        extra = {
            "conditions": stats.to_dict(),
            "training_state": {
                "epochs_done": epoch_done,
                "options": options.to_dict(),
                "optimizer": optimizer_meta,
                "history": [r.to_dict() for r in history],
                "best_epoch": best_epoch,
                "best_val_dice": best_dice,
            },
        }
        save_cheart(state_path, net, extra, tensors=tensors)

    labels_all = torch.from_numpy(train.labels)  # uint8 on the CPU; batches move to the device
    conditions_all = torch.from_numpy(stats.matrix(train.conditions))
    n_batches = len(batch_indices(len(train), batch_size))
    stopped_early = False
    since_best = 0
    if history:
        since_best = sum(1 for r in history if r.val_dice is not None and r.epoch > best_epoch)
    use_amp = options.mixed_precision
    for epoch in range(first_epoch, options.epochs):
        data_rng = torch_generator(epoch_seed(options.seed, epoch, _STREAM_DATA))
        torch.manual_seed(epoch_seed(options.seed, epoch, _STREAM_NOISE))
        net.train()
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        tick = time.perf_counter()
        bar = progress_bar(n_batches, f"epoch {epoch + 1}/{options.epochs}", options.progress)
        batches = batch_indices(len(train), batch_size, data_rng)
        beta_now = beta
        for step, idx in enumerate(batches):
            beta_now = beta * linear_ramp(epoch + step / n_batches, options.beta_warmup_epochs)
            labels = _shift(labels_all[idx].to(device), data_rng, options.shift_voxels)
            cond = conditions_all[idx].to(device)
            with autocast(device, enabled=use_amp):
                output = net(labels[:, 0], cond)
            terms = cheart_loss(output, labels, beta_now)
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            optimizer.step()
            sums += torch.stack([t.detach() for t in terms]).double()
            if options.progress:
                loss, ce, kl = (sums / (step + 1)).tolist()
                bar.set_postfix(loss=f"{loss:.4f}", ce=f"{ce:.4f}", kl=f"{kl:.1f}")
            bar.update()
        bar.close()
        seconds = time.perf_counter() - tick
        means = (sums / max(len(batches), 1)).cpu().tolist()
        record = EpochRecord(
            epoch=epoch + 1,
            loss=means[0],
            ce=means[1],
            kl=means[2],
            beta=beta_now,
            lr=lr,
            seconds=seconds,
            sequences_per_s=sum(len(b) for b in batches) / max(seconds, 1e-9),
        )
        improved = False
        has_val = val is not None and len(val) > 0
        if has_val and ((epoch + 1) % options.validate_every == 0 or epoch + 1 == options.epochs):
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
        if done or (options.checkpoint_every and (epoch + 1) % options.checkpoint_every == 0):
            write_state(epoch + 1)
        if done:
            break

    if out_path is not None and out_path.is_file():
        from cardio_explorer.engine.cheart.model import load_model

        model = load_model(out_path, device)
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


def train_cheart_on_folder(
    data: str | Path,
    out: str | Path,
    config: CHeartConfig | None = None,
    options: TrainOptions | None = None,
    *,
    resume: str | Path | None = None,
    summary: dict[str, Any] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Read a dense cohort, split it (seeded), train and write ``out`` (+ its state file)."""
    options = options or TrainOptions()
    if resume is not None and config is None:
        config = CHeartConfig.from_dict(load_checkpoint(resume, "cheart").config)
    config = config or CHeartConfig()
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
        train, val, config, options, out=out, resume=resume, summary=info, on_epoch=on_epoch
    )
