"""SPADE training: alternating generator (+ style encoder) and discriminator Adam steps, TTUR.

Two files per run: ``out`` holds what inference needs (style encoder + generator, small enough to
bundle), ``training_state_path(out)`` (``m.safetensors`` -> ``m.state.safetensors``, as the label
VAE) holds everything a resume needs (all three networks and
both optimizers as safetensors tensors, the rest as JSON; nothing pickled). Every epoch reseeds
its batch order and style noise from (seed, epoch), so a resumed run draws the same numbers as
an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.limits import MAX_BATCH, check_count
from cardio_explorer.engine.nn import distributed
from cardio_explorer.engine.nn.checkpoint import load_checkpoint, save_checkpoint
from cardio_explorer.engine.nn.onehot import one_hot
from cardio_explorer.engine.nn.trainer import Progress, Schedule, Trainer
from cardio_explorer.engine.nn.training import (
    EpochLosses,
    finite_or_none,
    optimizer_state_tensors,
    restore_optimizer_state,
)
from cardio_explorer.engine.nn.training import state_path_for as training_state_path
from cardio_explorer.engine.spade.config import SpadeConfig
from cardio_explorer.engine.spade.data import ImageLabelSlices
from cardio_explorer.engine.spade.losses import (
    LossWeights,
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
    kl_loss,
    reconstruction_loss,
)
from cardio_explorer.engine.spade.network import SpadeModel

log = logging.getLogger(__name__)

KIND = "spade"
OPTIM_G, OPTIM_D = "optim_g.", "optim_d."
MODEL_PREFIXES = ("encoder.", "generator.", "discriminator.")
# Slices scored for the validation reconstruction error each epoch (bounded cost).
MAX_VAL_SLICES = 256


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings (REFERENCE.md: Adam, TTUR G 1e-4 / D 4e-4, betas (0, 0.9))."""

    epochs: int = 50
    batch_size: int = 16
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.9)
    weights: LossWeights = field(default_factory=LossWeights)
    seed: int = 1220
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise CardioInputError("--epochs", f"must be at least 1, got {self.epochs}")
        check_count("--batch-size", self.batch_size, 2, MAX_BATCH)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for checkpoints."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


class StepLosses(NamedTuple):
    """Loss terms of one step (unweighted)."""

    d: float
    g_gan: float
    feature_matching: float
    reconstruction: float
    kl: float


class TrainResult(NamedTuple):
    """What a run produced: epochs done in total, per-epoch history, the two files."""

    epochs: int
    history: list[dict[str, Any]]
    checkpoint: Path
    training_state: Path


class SpadeTrainer:
    """One model, its two optimizers and the step that updates them."""

    def __init__(self, model: SpadeModel, settings: TrainSettings, device: torch.device) -> None:
        if model.discriminator is None:
            raise CardioInputError("SPADE model", "training needs the discriminator")
        self.model = model.to(device).train()
        self.settings = settings
        self.device = device
        g_params = [*model.encoder.parameters(), *model.generator.parameters()]
        self.opt_g = torch.optim.Adam(g_params, lr=settings.lr_g, betas=settings.betas)
        self.opt_d = torch.optim.Adam(
            model.discriminator.parameters(), lr=settings.lr_d, betas=settings.betas
        )
        # Under torchrun each network trains through its DDP wrapper (gradients averaged).
        self.encoder = distributed.wrap(model.encoder, device)
        self.generator = distributed.wrap(model.generator, device)
        self.discriminator = distributed.wrap(model.discriminator, device)

    def update(self, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """One generator step then one discriminator step on a batch; the StepLosses terms.

        labels: integer (B, H, W); images: float (B, H, W) in [-1, 1]; both on the device.
        Returns the five unweighted terms (StepLosses order) as one detached tensor.
        """
        model, w = self.model, self.settings.weights
        disc = model.discriminator
        assert disc is not None
        onehot = one_hot(labels, model.config.n_labels)
        real = images[:, None].float()

        # generator + style encoder: D frozen so no gradients are spent on its weights (and it
        # runs unwrapped: its DDP wrapper only sees the discriminator step)
        disc.requires_grad_(False)
        with autocast(self.device):
            mu, logvar = self.encoder(real)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            fake = self.generator(onehot, z)
            outs = disc(torch.cat([onehot, onehot]), torch.cat([fake, real]))
            fake_out = [[t[: len(real)] for t in scale] for scale in outs]
            real_out = [[t[len(real) :] for t in scale] for scale in outs]
            g_gan = hinge_g_loss(fake_out)
            fm = feature_matching_loss(real_out, fake_out)
        recon = reconstruction_loss(fake.float(), real)
        kl = kl_loss(mu.float(), logvar.float())
        g_loss = w.gan * g_gan + w.feature_matching * fm + w.reconstruction * recon + w.kl * kl
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()

        disc.requires_grad_(True)
        with autocast(self.device):
            outs = self.discriminator(torch.cat([onehot, onehot]), torch.cat([fake.detach(), real]))
            d_loss = hinge_d_loss(
                [[t[len(real) :] for t in scale] for scale in outs],
                [[t[: len(real)] for t in scale] for scale in outs],
            )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        return torch.stack([v.detach().float() for v in (d_loss, g_gan, fm, recon, kl)])

    # state ------------------------------------------------------------------------------------
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """All networks and both optimizers as tensors, plus the optimizers' JSON state."""
        tensors = dict(self.model.state_dict())
        g_t, g_meta = optimizer_state_tensors(self.opt_g, OPTIM_G)
        d_t, d_meta = optimizer_state_tensors(self.opt_d, OPTIM_D)
        return {**tensors, **g_t, **d_t}, {"optim_g": g_meta, "optim_d": d_meta}

    def load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        """Inverse of :meth:`state_tensors` (weights, then optimizer moments on the device)."""
        model_state = {k: v for k, v in tensors.items() if k.startswith(MODEL_PREFIXES)}
        self.model.load_state_dict(model_state)
        for opt, prefix, key in (
            (self.opt_g, OPTIM_G, "optim_g"),
            (self.opt_d, OPTIM_D, "optim_d"),
        ):
            restore_optimizer_state(opt, tensors, extra[key], prefix)
            for state in opt.state.values():
                for k, v in state.items():
                    if isinstance(v, torch.Tensor) and k != "step":
                        state[k] = v.to(self.device)


def _validation_l1(model: SpadeModel, val: ImageLabelSlices, device: torch.device) -> float:
    """Mean |G(labels, mu(image)) - image| over (at most MAX_VAL_SLICES) validation slices."""
    idx = np.linspace(0, len(val) - 1, min(len(val), MAX_VAL_SLICES)).round().astype(int)
    model.eval()
    errors = []
    with torch.no_grad():
        for batch in np.array_split(idx, max(1, len(idx) // 32)):
            labels = torch.from_numpy(val.labels[batch]).to(device)
            images = torch.from_numpy(val.images[batch]).to(device)
            mu = model.encoder(images[:, None]).mu
            fake = model.generator(one_hot(labels, model.config.n_labels), mu)[:, 0]
            errors.append(float((fake - images).abs().mean()) * len(batch))
    model.train()
    return sum(errors) / len(idx)


def train_spade(
    slices: ImageLabelSlices,
    config: SpadeConfig,
    settings: TrainSettings,
    device: torch.device,
    out: str | Path,
    *,
    val: ImageLabelSlices | None = None,
    resume: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    progress: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train (or resume) a SPADE model on paired slices; writes ``out`` and its training state.

    ``extra`` (JSON) goes into both files (e.g. the training subjects, so evaluation can hold
    them out). ``resume``: a state file (``training_state_path`` of an earlier run) to continue
    from, up to ``settings.epochs`` epochs in total.
    """
    out = Path(out)
    state_path = training_state_path(out)
    if slices.size != (config.image_size, config.image_size):
        raise CardioInputError(
            "training data",
            f"slices are {slices.size[0]} x {slices.size[1]} but the model makes "
            f"{config.image_size} x {config.image_size} images; preprocess to that size",
        )
    if len(slices) < settings.batch_size:
        raise CardioInputError(
            "training data", f"{len(slices)} slices, fewer than one batch of {settings.batch_size}"
        )
    torch.manual_seed(settings.seed)
    model = SpadeModel(config, with_discriminator=True)
    trainer = SpadeTrainer(model, settings, device)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume is not None:
        ckpt = load_checkpoint(resume, KIND)
        if "optim_g" not in ckpt.extra:
            raise CardioInputError(
                resume, f"holds no training state; pass the {state_path.name}-style state file"
            )
        if SpadeConfig.from_json(ckpt.config) != config:
            raise CardioInputError(
                resume, "was trained with another architecture config than the one asked for"
            )
        trainer.load_state(ckpt.tensors, ckpt.extra)
        history = list(ckpt.extra.get("training", {}).get("history", []))
        start_epoch = int(ckpt.extra.get("training", {}).get("epochs_done", 0))
        log.info("resuming %s at epoch %d", resume, start_epoch)
    if start_epoch >= settings.epochs:
        log.info("already trained %d epochs (asked for %d)", start_epoch, settings.epochs)

    method = _SpadeMethod(trainer, slices, val, config, out, state_path, extra)
    schedule = Schedule(
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        seed=settings.seed,
        checkpoint_every=settings.checkpoint_every,
        validate_every=1,
        progress=progress,
        desc="SPADE epoch",
    )
    run = Trainer(method, schedule, len(slices), score=lambda s: -s["val_l1"]).run(
        Progress(history=history, epochs_done=start_epoch), on_epoch
    )
    if start_epoch >= settings.epochs and distributed.is_main():
        method.save_state(run)
    return TrainResult(max(start_epoch, settings.epochs), run.history, out, state_path)


class _SpadeMethod:
    """SPADE's part of a training run: batches for SpadeTrainer.update, validation, records."""

    def __init__(
        self,
        trainer: SpadeTrainer,
        slices: ImageLabelSlices,
        val: ImageLabelSlices | None,
        config: SpadeConfig,
        out: Path,
        state_path: Path,
        extra: dict[str, Any] | None,
    ) -> None:
        self.trainer, self.val, self.config = trainer, val, config
        self.out, self.state_path, self.extra = out, state_path, extra
        self.labels = torch.from_numpy(slices.labels)
        self.images = torch.from_numpy(slices.images)
        self.has_validation = val is not None and len(val) > 0

    def begin_epoch(self, epoch: int, n_steps: int) -> None:
        self.trainer.model.train()

    def step(
        self, epoch: int, step: int, idx: torch.Tensor, data_rng: torch.Generator
    ) -> torch.Tensor:
        device = self.trainer.device
        return self.trainer.update(self.labels[idx].to(device), self.images[idx].to(device))

    def postfix(self, epoch: int, step: int, means: list[float]) -> dict[str, str]:
        losses = StepLosses(*means)
        return {"d": f"{losses.d:.3f}", "rec": f"{losses.reconstruction:.3f}"}

    def validate(self, epoch: int) -> dict[str, float]:
        return {"val_l1": _validation_l1(self.trainer.model, self.val, self.trainer.device)}

    def record(
        self, epoch: int, losses: EpochLosses, scores: dict[str, float] | None
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            **{k: finite_or_none(v) for k, v in zip(StepLosses._fields, losses.means, strict=True)},
            "seconds": round(losses.seconds, 2),
            "slices_per_s": round(losses.items_per_s, 2),
        }
        if scores is not None:
            record["val_l1"] = finite_or_none(scores["val_l1"])
        log.debug("epoch %s", record)
        return record

    def save_best(self, progress: Progress) -> None:
        """Nothing: both files follow the checkpoint schedule."""

    def save_state(self, progress: Progress) -> None:
        _save(
            self.trainer,
            self.config,
            self.trainer.settings,
            progress.history,
            progress.epochs_done,
            self.out,
            self.state_path,
            self.extra,
        )


def _save(
    trainer: SpadeTrainer,
    config: SpadeConfig,
    settings: TrainSettings,
    history: list[dict[str, Any]],
    epochs_done: int,
    out: Path,
    state_path: Path,
    extra: dict[str, Any] | None,
) -> None:
    training = {"epochs_done": epochs_done, "settings": settings.to_json(), "history": history}
    tensors, optim_meta = trainer.state_tensors()
    save_checkpoint(
        state_path,
        KIND,
        config.to_json(),
        tensors,
        {**(extra or {}), "training": training, **optim_meta},
    )
    inference = {k: v for k, v in tensors.items() if k.startswith(("encoder.", "generator."))}
    summary = {**training, "history": history[-1:]}
    save_checkpoint(out, KIND, config.to_json(), inference, {**(extra or {}), "training": summary})
