"""Small helpers shared by training loops: seeds, threads, batches, schedules, optimizer state.

Reproducibility rule used by the trainers: every epoch reseeds its random streams from
(seed, epoch), so a run resumed at an epoch boundary draws exactly the numbers an uninterrupted
run would have drawn, with no RNG state to carry. Optimizer state goes into the safetensors file
as tensors (prefix ``optim.``) plus JSON, never pickled.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Self

import numpy as np
import torch
from tqdm.auto import tqdm

from cardio_explorer.engine.device import choose_device
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.limits import available_cpus
from cardio_explorer.engine.nn import distributed
from cardio_explorer.engine.nn.checkpoint import Checkpoint, load_checkpoint

OPTIM_PREFIX = "optim."
# Random streams per epoch: batch order + augmentation, and the model's sampling noise.
STREAM_DATA, STREAM_NOISE = 0, 1


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 63-bit seed for one (run seed, epoch, stream) triple; streams keep draws independent."""
    mixed = np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(2)
    return int((int(mixed[0]) << 32 | int(mixed[1])) & (2**63 - 1))


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's global generators (NumPy code here uses explicit ones)."""
    random.seed(seed)
    torch.manual_seed(seed)


def torch_generator(seed: int) -> torch.Generator:
    """A CPU torch generator with this seed (batch order, augmentation)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def reseed_epoch(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """Reseed torch's global (noise) stream for this epoch; returns the epoch's data generator.

    Each rank of a torchrun job draws its own streams (rank 0 the single-process ones).
    """
    streams = 2 * rank
    data_rng = torch_generator(epoch_seed(seed, epoch, streams + STREAM_DATA))
    torch.manual_seed(epoch_seed(seed, epoch, streams + STREAM_NOISE))
    return data_rng


def configure_cpu_threads(threads: int | None = None) -> int:
    """Use ``threads`` intra-op threads (default: the CPUs this process may run on, shared by
    the torchrun processes on this machine); fewer than 1 or more than the CPUs is a clear
    error, as for every command's ``--threads``."""
    if threads is None:
        threads = max(1, available_cpus() // distributed.local_world_size())
    elif int(threads) < 1:
        raise CardioInputError("--threads", f"must be at least 1, got {threads}")
    elif int(threads) > available_cpus():  # more only thrash (10000 threads hung the machine)
        raise CardioInputError(
            "--threads", f"must be at most {available_cpus()} (the CPUs available), got {threads}"
        )
    torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def training_device(name: str, threads: int | None = None) -> torch.device:
    """The device to train on (``choose_device``); on the CPU also sets the thread count.

    Under torchrun this process joins the process group here and takes its LOCAL_RANK's GPU.
    """
    device = distributed.join_from_environment(choose_device(name))
    if device.type == "cpu":
        configure_cpu_threads(threads)
    return device


def check_options(options: object, checks: Mapping[str, bool]) -> None:
    """Raise for the first failed check, naming its flag and the option's value.

    ``checks`` maps a flag (``--batch-size``) to whether its value is valid; the value is read
    from the attribute of the same name (``batch_size``).
    """
    for flag, ok in checks.items():
        if not ok:
            value = getattr(options, flag[2:].replace("-", "_"))
            raise CardioInputError(flag, f"invalid value {value!r}")


def batch_indices(
    n: int, batch_size: int, generator: torch.Generator | None = None, drop_last: bool = True
) -> list[torch.Tensor]:
    """Index batches over n items, shuffled when a generator is given.

    ``drop_last`` drops a final partial batch (tiny batches upset BatchNorm) unless it would be
    the only one.
    """
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    batches = list(torch.split(order, batch_size))
    if drop_last and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def linear_ramp(progress: float, length: float) -> float:
    """0 -> 1 linearly over ``length`` units of progress, then 1 (a KL warm-up factor)."""
    if length <= 0:
        return 1.0
    return float(min(max(progress / length, 0.0), 1.0))


def decay_factor(epoch: int, epochs: int, decay_epochs: int, floor: float = 0.0) -> float:
    """Learning-rate factor: 1 until the last ``decay_epochs`` epochs, then linear to ``floor``.

    The paper trains 300 epochs at a constant rate then decays over 100 more.
    """
    start = epochs - decay_epochs
    if decay_epochs <= 0 or epoch < start:
        return 1.0
    return floor + (1.0 - floor) * (1.0 - (epoch - start + 1) / (decay_epochs + 1))


def should_checkpoint(epoch: int, every: int, last_epoch: int) -> bool:
    """True after every ``every``-th epoch (1-based count) and after the last one."""
    done = epoch + 1
    return done == last_epoch or (every > 0 and done % every == 0)


def should_validate(epoch: int, every: int, last_epoch: int) -> bool:
    """Validation follows the checkpoint schedule: after every ``every``-th epoch and the last."""
    return should_checkpoint(epoch, every, last_epoch)


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "batch") -> tqdm:
    """A tqdm bar (disabled when not wanted, e.g. in tests or when not on a terminal)."""
    return tqdm(
        total=total, desc=desc, unit=unit, disable=not enabled, leave=False, dynamic_ncols=True
    )


def optimizer_state_tensors(
    optimizer: torch.optim.Optimizer, prefix: str = OPTIM_PREFIX
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state as (tensors named ``prefix``state.<param>.<key>, JSON-able rest)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}state.{param_id}.{key}"] = value.detach().cpu().clone()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in state["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalars": scalars}


def restore_optimizer_state(
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    prefix: str = OPTIM_PREFIX,
) -> None:
    """Inverse of :func:`optimizer_state_tensors` (tensors go to each parameter's device)."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix + "state."):
            continue
        param_id, key = name[len(prefix + "state.") :].split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    for param_id, entries in meta.get("scalars", {}).items():
        state.setdefault(int(param_id), {}).update(entries)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def finite_or_none(value: float) -> float | None:
    """A float for JSON: NaN/inf become None (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class BetaVaeEpochRecord:
    """One epoch of a beta-VAE: mean losses (total, cross-entropy, KL), KL weight, learning
    rate and seconds. Subclasses add their throughput field, then ``val_dice`` (dict or None)."""

    epoch: int
    loss: float
    ce: float
    kl: float
    beta: float
    lr: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (rounded; NaN becomes None)."""
        out: dict[str, Any] = {
            k: finite_or_none(round(v, 6)) if isinstance(v, float) else v
            for k, v in dataclasses.asdict(self).items()
            if k != "val_dice"
        }
        val_dice = getattr(self, "val_dice", None)
        if val_dice is not None:
            out["val_dice"] = {k: round(v, 5) for k, v in val_dice.items()}
        return out

    @classmethod
    def from_losses(
        cls, epoch: int, losses: EpochLosses, beta: float, lr: float, **more: Any
    ) -> Self:
        """The record of one :func:`optimise_epoch` pass (its means: total, CE, KL); ``more``
        holds the subclass's fields."""
        loss, ce, kl = losses.means
        return cls(
            epoch=epoch, loss=loss, ce=ce, kl=kl, beta=beta, lr=lr, seconds=losses.seconds, **more
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict` (None back to NaN)."""
        values = {k: float("nan") if v is None and k != "val_dice" else v for k, v in data.items()}
        return cls(**values)


class EpochLosses(NamedTuple):
    """One optimisation pass: mean of each loss term, wall time and items per second."""

    means: list[float]
    seconds: float
    items_per_s: float


class AdaptiveGradClip:
    """Clips the gradient norm to ``factor`` x its running mean, so no scale has to be tuned.

    Adam turns a sudden gradient spike into a step far larger than usual (its second-moment
    estimate lags); clipping spikes to a few times the recent norm keeps training stable.
    """

    def __init__(self, factor: float = 3.0, momentum: float = 0.98) -> None:
        self.factor = factor
        self.momentum = momentum
        self.mean_norm: float | None = None

    def __call__(self, parameters: Iterable[torch.nn.Parameter]) -> float:
        """Clip in place; returns the norm before clipping."""
        params = [p for p in parameters if p.grad is not None]
        limit = float("inf") if self.mean_norm is None else self.factor * self.mean_norm
        norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
        if math.isfinite(norm):
            seen = min(norm, limit)
            self.mean_norm = (
                seen
                if self.mean_norm is None
                else self.momentum * self.mean_norm + (1 - self.momentum) * seen
            )
        return norm


def optimise_epoch(
    batches: Sequence[torch.Tensor],
    loss_of: Callable[[int, torch.Tensor], Sequence[torch.Tensor]],
    optimizer: torch.optim.Optimizer | None,
    *,
    desc: str,
    progress: bool,
    postfix: Callable[[int, list[float]], dict[str, str]] | None = None,
    postfix_every: int = 1,
    grad_clip: AdaptiveGradClip | None = None,
) -> EpochLosses:
    """One pass over ``batches`` (at least one): ``loss_of(step, idx)`` -> loss terms, total first.

    Each step backpropagates the total and steps the optimizer (None: ``loss_of`` made its own
    updates, e.g. SPADE's two optimizers, and only reports its terms). The terms are summed on their
    device, since reading values back every step would stall a GPU; ``postfix(step, running
    means)`` labels the progress bar every ``postfix_every`` steps and at the last one.
    """
    tick = time.perf_counter()
    bar = progress_bar(len(batches), desc, progress)
    sums: torch.Tensor | None = None
    for step, idx in enumerate(batches):
        terms = loss_of(step, idx)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            terms[0].backward()
            norm = 0.0
            if grad_clip is not None:
                norm = grad_clip(p for group in optimizer.param_groups for p in group["params"])
            if math.isfinite(norm):  # a non-finite gradient would poison Adam's moments: skip it
                optimizer.step()
        step_terms = torch.stack([t.detach() for t in terms]).double()
        sums = step_terms if sums is None else sums + step_terms
        if postfix and progress and (step % postfix_every == 0 or step == len(batches) - 1):
            bar.set_postfix(postfix(step, (sums / (step + 1)).tolist()))
        bar.update()
    bar.close()
    seconds = time.perf_counter() - tick
    assert sums is not None, "optimise_epoch needs at least one batch"
    return EpochLosses(
        means=(sums / len(batches)).cpu().tolist(),
        seconds=seconds,
        items_per_s=sum(len(b) for b in batches) / max(seconds, 1e-9),
    )


def state_path_for(out: str | Path) -> Path:
    """The resumable-state file beside a model file: m.safetensors -> m.state.safetensors."""
    out = Path(out)
    return out.with_name(f"{out.name.removesuffix('.safetensors')}.state.safetensors")


def load_training_state(path: str | Path, kind: str) -> tuple[Checkpoint, dict[str, Any]]:
    """A state file's checkpoint and its training state; a clear error for a model-only file."""
    checkpoint = load_checkpoint(path, expected_kind=kind)
    state = checkpoint.extra.get("training_state")
    if not isinstance(state, dict):
        raise CardioInputError(
            path, "holds no training state (resume from the .state.safetensors file of a run)"
        )
    return checkpoint, state


def restore_training(
    checkpoint: Checkpoint,
    state: Mapping[str, Any],
    module: torch.nn.Module,
    prefix: str,
    optimizer: torch.optim.Optimizer,
) -> int:
    """Load a state file's weights and optimizer state; returns the epochs already done."""
    checkpoint.load_into(module, prefix)
    restore_optimizer_state(optimizer, checkpoint.tensors, state["optimizer"])
    return int(state["epochs_done"])


def training_state(
    optimizer: torch.optim.Optimizer,
    epochs_done: int,
    options: Mapping[str, Any],
    history: Sequence[BetaVaeEpochRecord],
    **more: Any,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(optimizer tensors, JSON ``training_state``) of a resumable file; ``more`` adds keys."""
    tensors, optimizer_meta = optimizer_state_tensors(optimizer)
    state = {
        "epochs_done": epochs_done,
        "options": dict(options),
        "optimizer": optimizer_meta,
        "history": [r.to_dict() for r in history],
        **more,
    }
    return tensors, state
