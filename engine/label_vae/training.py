"""Training the 2D label VAE on a cohort: preload slices, train, validate, checkpoint, resume.

Two files come out of a run. The *state* file (model + Adam state + epoch + history; written
every ``checkpoint_every`` epochs and at the end) lets ``resume`` continue exactly as if never
interrupted: every epoch reseeds its random streams from (seed, epoch), so nothing else is
needed. The *model* file (weights, config, grid, training summary and, when the pathology
package is present, the latent atlas) is the one to ship and load with ``load_label_vae``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cardio_explorer.engine.device import autocast, current_precision, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.atlas import atlas_extra
from cardio_explorer.engine.label_vae.config import LabelVaeConfig
from cardio_explorer.engine.label_vae.encoding import build_atlas
from cardio_explorer.engine.label_vae.network import (
    KIND,
    MODEL_PREFIX,
    LabelVAE,
    LossTerms,
    build_label_vae,
    save_label_vae,
)
from cardio_explorer.engine.label_vae.prepare import prepare_subjects
from cardio_explorer.engine.label_vae.validation import reconstruction_dice
from cardio_explorer.engine.limits import MAX_BATCH
from cardio_explorer.engine.nn import distributed
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.nn.onehot import one_hot
from cardio_explorer.engine.nn.slices import (
    LabelSlices,
    augment_labels,
    collect_label_slices,
    split_subjects,
)
from cardio_explorer.engine.nn.trainer import BetaVaeSchedule, Progress, Schedule, Trainer
from cardio_explorer.engine.nn.training import (
    AdaptiveGradClip,
    BetaVaeEpochRecord,
    EpochLosses,
    check_options,
    linear_ramp,
    load_training_state,
    restore_training,
    state_path_for,
    training_device,
    training_state,
)
from cardio_explorer.engine.preprocess import DEFAULT_FRAME, check_frame
from cardio_explorer.engine.subject import Subject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters and run settings of label VAE training.

    beta None uses the config's beta. The KL weight ramps linearly from 0 over the first
    ``beta_warmup_epochs`` (better reconstruction Dice than full beta from the start); the
    learning rate decays linearly over the last ``lr_decay_epochs`` (None: a quarter of them).
    """

    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    beta: float | None = None
    beta_warmup_epochs: float = 10.0
    lr_decay_epochs: int | None = None
    seed: int = 1220
    device: str = "auto"
    val_fraction: float = 0.1
    checkpoint_every: int = 10
    validate_every: int = 5
    augment: bool = True
    max_rotation_deg: float = 10.0
    max_shift_px: float = 4.0
    flip: bool = False
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        checks = {
            "--epochs": self.epochs >= 1,
            "--batch-size": 1 <= self.batch_size <= MAX_BATCH,
            "--lr": self.lr > 0,
            "--beta": self.beta is None or self.beta >= 0,
            "--beta-warmup-epochs": self.beta_warmup_epochs >= 0,
            "--checkpoint-every": self.checkpoint_every >= 0,
            "--validate-every": self.validate_every >= 0,
            "--max-rotation-deg": 0 <= self.max_rotation_deg <= 180,
            "--max-shift-px": self.max_shift_px >= 0,
        }
        check_options(self, checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return dataclasses.asdict(self)


@dataclass
class EpochRecord(BetaVaeEpochRecord):
    """What one epoch did: mean losses, schedule values, speed, validation Dice (when run)."""

    slices_per_s: float
    val_dice: dict[str, float] | None = None


@dataclass
class TrainResult:
    """A finished (or resumed-and-finished) run: the model in eval mode and its history."""

    model: LabelVAE
    history: list[EpochRecord]
    device: torch.device
    state_path: Path | None = None
    final_val_dice: dict[str, float] | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _resume_state(path: Path, config: LabelVaeConfig | None) -> tuple[Any, dict[str, Any]]:
    checkpoint, state = load_training_state(path, KIND)
    saved = LabelVaeConfig.from_dict(checkpoint.config, source=path)
    if config is not None and config != saved:
        raise CardioInputError(
            path,
            f"was trained with config {saved.name!r} ({saved}); "
            f"it cannot resume with a different config ({config.name!r})",
        )
    return checkpoint, state


class _LabelVaeMethod(BetaVaeSchedule):
    """The label VAE's part of a training run: its step, validation, records and state file."""

    def __init__(
        self,
        model: LabelVAE,
        optimizer: torch.optim.Optimizer,
        train_labels: torch.Tensor,
        val: LabelSlices | None,
        options: TrainOptions,
        beta: float,
        state_path: str | Path | None,
        device: torch.device,
    ) -> None:
        decay = options.epochs // 4 if options.lr_decay_epochs is None else options.lr_decay_epochs
        super().__init__(
            model,
            optimizer,
            lr=options.lr,
            beta=beta,
            warmup_epochs=options.beta_warmup_epochs,
            epochs=options.epochs,
            decay_epochs=decay,
        )
        self.options = options
        self.forward = distributed.wrap(model, device)  # DDP under torchrun
        self.train_labels, self.val, self.device = train_labels, val, device
        self.state_path = state_path
        self.has_validation = val is not None and len(val) > 0

    def step(
        self, epoch: int, step: int, idx: torch.Tensor, data_rng: torch.Generator
    ) -> LossTerms:
        labels = self.train_labels[idx.to(self.device)]
        o = self.options
        if o.augment:
            labels = augment_labels(
                labels, data_rng, o.max_rotation_deg, o.max_shift_px, flip=o.flip
            )
        with autocast(self.device):
            out = self.forward(one_hot(labels, self.model.config.n_classes))
        return self.model.loss(out, labels, self.beta_at(epoch, step))

    def postfix(self, epoch: int, step: int, means: list[float]) -> dict[str, str]:
        loss, ce, kl = means
        beta_now = self.beta_at(epoch, step)
        return {
            "loss": f"{loss:.1f}",
            "ce": f"{ce:.1f}",
            "kl": f"{kl:.2f}",
            "beta": f"{beta_now:.3g}",
        }

    def validate(self, epoch: int) -> dict[str, float]:
        return reconstruction_dice(self.model, self.val, self.device)

    def record(
        self, epoch: int, losses: EpochLosses, scores: dict[str, float] | None
    ) -> EpochRecord:
        beta = self.beta * linear_ramp(epoch + 1, self.options.beta_warmup_epochs)
        record = EpochRecord.from_losses(
            epoch + 1, losses, beta=beta, lr=self.lr, slices_per_s=losses.items_per_s
        )
        record.val_dice = scores
        return record

    def save_best(self, progress: Progress) -> None:
        """Nothing: the model file is written once, with its atlas, after training."""

    def save_state(self, progress: Progress) -> None:
        if self.state_path is not None:
            save_training_state(
                self.state_path,
                self.model,
                self.optimizer,
                progress.epochs_done,
                self.options,
                progress.history,
            )


def train_label_vae(
    train: LabelSlices,
    val: LabelSlices | None,
    config: LabelVaeConfig | None = None,
    options: TrainOptions | None = None,
    *,
    state_path: str | Path | None = None,
    resume: str | Path | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train (or resume training) a label VAE on preloaded slices; returns it in eval mode.

    config: None takes the resumed checkpoint's config, else LEAN. state_path: where the
    resumable state is written every ``checkpoint_every`` epochs and at the end (None: never).
    resume: a state file; training continues after its last epoch up to ``options.epochs``.
    """
    options = options or TrainOptions()
    started = time.perf_counter()
    device = training_device(options.device, options.threads)
    if device.type != "cpu":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its kernels
    checkpoint = state = None
    if resume is not None:
        checkpoint, state = _resume_state(Path(resume), config)
        config = LabelVaeConfig.from_dict(checkpoint.config, source=resume)
    config = config or LabelVaeConfig()
    if train.size != (config.size, config.size):
        raise CardioInputError(
            "training slices", f"are {train.size}, the config needs {config.size} x {config.size}"
        )
    beta = config.beta if options.beta is None else options.beta

    torch.manual_seed(options.seed)
    model = build_label_vae(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    progress = Progress()
    if checkpoint is not None and state is not None:
        progress.epochs_done = restore_training(checkpoint, state, model, MODEL_PREFIX, optimizer)
        progress.history = [EpochRecord.from_dict(r) for r in state.get("history", [])]
        log.info("resuming %s after epoch %d", resume, progress.epochs_done)
    last_dice = progress.history[-1].val_dice if progress.history else None

    # Preloaded uint8 slices on the training device; one-hot per batch.
    train_labels = torch.from_numpy(train.labels).to(device)
    method = _LabelVaeMethod(model, optimizer, train_labels, val, options, beta, state_path, device)
    schedule = Schedule(
        epochs=options.epochs,
        batch_size=options.batch_size,
        seed=options.seed,
        checkpoint_every=options.checkpoint_every,
        validate_every=options.validate_every,
        progress=options.progress,
        postfix_every=10,
    )
    trainer = Trainer(method, schedule, len(train), optimizer, grad_clip=AdaptiveGradClip())
    trainer.run(progress, on_epoch)
    model.eval()
    return TrainResult(
        model=model,
        history=progress.history,
        device=device,
        state_path=Path(state_path) if state_path is not None else None,
        final_val_dice=progress.last_scores or last_dice,
        seconds=time.perf_counter() - started,
    )


def save_training_state(
    path: str | Path,
    model: LabelVAE,
    optimizer: torch.optim.Optimizer,
    epochs_done: int,
    options: TrainOptions,
    history: Sequence[EpochRecord],
) -> Path:
    """Write the resumable state: model + optimizer tensors, epoch, options, history (JSON)."""
    tensors, state = training_state(optimizer, epochs_done, options.to_dict(), history)
    return save_label_vae(path, model, extra={"training_state": state}, tensors=tensors)


def build_atlas_extra(
    model: LabelVAE, subjects: Sequence[Subject], device: torch.device
) -> dict[str, Any]:
    """{'atlas': the latent atlas as a JSON-able dict}, for the model file's extra.

    This is where training hands over to the pathology engine: the atlas is computed on the
    training subjects with the final weights.
    """
    return atlas_extra(build_atlas(model, list(subjects), device))


def train_label_vae_on_subjects(
    subjects: Sequence[Subject],
    out: str | Path,
    config: LabelVaeConfig | None = None,
    options: TrainOptions | None = None,
    *,
    resume: str | Path | None = None,
    summary: dict[str, Any] | None = None,
    spacing_mm: float = 1.5,
    frame: str = DEFAULT_FRAME,
    with_atlas: bool = True,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """The whole pipeline: preprocess, split, train, atlas, write ``out`` (+ its state file).

    ``summary`` (data folder, command line...) is merged into the model file's
    extra["training"]; extra["grid"] holds the in-plane size and spacing of decoded slices and
    the frame (anatomical or header) hearts must be in for this model.
    """
    check_frame(frame, "--frame")
    options = options or TrainOptions()
    if resume is not None and config is None:
        config = LabelVaeConfig.from_dict(load_checkpoint(resume, KIND).config, source=resume)
    config = config or LabelVaeConfig()
    subjects = prepare_subjects(subjects, config.size, spacing_mm, frame)
    split = split_subjects(subjects, options.val_fraction, options.seed)
    if not split.train:
        raise CardioInputError("cohort", "no subjects left for training after the split")
    train = collect_label_slices(split.train, size=config.size)
    val = collect_label_slices(split.val, size=config.size) if split.val else None
    result = train_label_vae(
        train,
        val,
        config,
        options,
        state_path=state_path_for(out),
        resume=resume,
        on_epoch=on_epoch,
    )
    groups: dict[str, int] = {}
    for subject in subjects:
        groups[subject.group or "unknown"] = groups.get(subject.group or "unknown", 0) + 1
    training = {
        **(summary or {}),
        "n_subjects": len(subjects),
        "n_train_subjects": len(split.train),
        "n_val_subjects": len(split.val),
        "val_subjects": [s.subject_id for s in split.val],
        "subjects_per_group": groups,
        "n_train_slices": len(train),
        "n_val_slices": len(val) if val is not None else 0,
        "epochs": options.epochs,
        "options": options.to_dict(),
        "device": describe(result.device),
        "processes": distributed.world_size(),
        "precision": current_precision(result.device),
        "torch": torch.__version__,
        "seconds": round(result.seconds, 1),
        "final_val_dice": result.final_val_dice,
        "history": [r.to_dict() for r in result.history],
    }
    extra: dict[str, Any] = {
        "grid": {"size": config.size, "spacing_mm": spacing_mm, "frame": frame},
        "training": training,
    }
    if distributed.is_main():  # under torchrun rank 0 alone builds the atlas and writes
        if with_atlas:
            extra.update(build_atlas_extra(result.model, split.train, result.device))
        save_label_vae(out, result.model, extra=extra)
    distributed.barrier()
    result.extra = extra
    return result
