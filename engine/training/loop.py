"""Small helpers shared by training loops: seeds, threads, batches, schedules, optimizer state.

Reproducibility rule used by the trainers: every epoch reseeds its random streams from
(seed, epoch), so a run resumed at an epoch boundary draws exactly the numbers an uninterrupted
run would have drawn, with no RNG state to carry. Optimizer state goes into the safetensors file
as tensors (prefix ``optim.``) plus JSON, never pickled.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

OPTIM_PREFIX = "optim."


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


def configure_cpu_threads(threads: int | None = None) -> int:
    """Use ``threads`` intra-op threads (default: the CPUs this process may run on)."""
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        threads = threads or os.cpu_count() or 1
    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()


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
