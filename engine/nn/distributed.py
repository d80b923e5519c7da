"""Training on several processes started by torchrun: DistributedDataParallel over gloo or NCCL.

``torchrun --nproc-per-node N -m cardio_explorer train KIND ...`` sets RANK, WORLD_SIZE,
LOCAL_RANK (and MASTER_ADDR/PORT) in each process's environment; the first training device
asked for joins the process group they describe (NCCL on CUDA, gloo on the CPU). Without those
variables, or with WORLD_SIZE 1, every function here is the single-process no-op, so the same
training code runs either way. Rank 0 alone validates and writes files; the others wait for it.
"""

from __future__ import annotations

import atexit
import os
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from cardio_explorer.engine.errors import CardioInputError

T = TypeVar("T")


def env_world_size() -> int:
    """WORLD_SIZE from the environment (1 when unset: not launched by torchrun)."""
    return _env_int("WORLD_SIZE", 1)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise CardioInputError(name, f"must be an integer, got {value!r}") from None


def is_distributed() -> bool:
    """True inside a process group of two or more processes."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes training together (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on the process that validates, reports and writes files (rank 0)."""
    return rank() == 0


def join_from_environment(device: torch.device) -> torch.device:
    """Join torchrun's process group when WORLD_SIZE > 1; returns the device this rank uses.

    On CUDA each rank takes the GPU of its LOCAL_RANK (``cuda`` without an index, or the index
    given, counts from there); the backend is NCCL on CUDA, gloo on the CPU.
    """
    if env_world_size() <= 1:
        return device
    if not dist.is_available():
        raise CardioInputError("WORLD_SIZE", "is above 1 but this torch has no torch.distributed")
    local_rank = _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        device = torch.device("cuda", (device.index or 0) + local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        atexit.register(leave)  # the command ends: leave the group cleanly
    return device


def leave() -> None:
    """Leave the process group (end of a torchrun command); a no-op without one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_world_size() -> int:
    """Processes on this machine (LOCAL_WORLD_SIZE; 1 without torchrun)."""
    return max(1, _env_int("LOCAL_WORLD_SIZE", 1))


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` in DistributedDataParallel inside a process group, else ``module`` itself.

    Call the returned module's forward for every step that trains it: its backward pass
    averages the gradients over the ranks.
    """
    if not is_distributed():
        return module
    ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (itself otherwise)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """This rank's shuffled share of ``range(n)`` for one epoch (DistributedSampler, tail dropped
    so every rank takes the same number of steps)."""
    sampler = DistributedSampler(
        range(n), num_replicas=world_size(), rank=rank(), shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


def broadcast(value: T) -> T:
    """Rank 0's ``value`` on every rank (any picklable object; here: validation scores)."""
    if not is_distributed():
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait until every rank gets here (e.g. until rank 0 has written a checkpoint)."""
    if is_distributed():
        dist.barrier()
