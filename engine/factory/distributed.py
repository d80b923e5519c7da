"""Ranks under torchrun: RANK, WORLD_SIZE and LOCAL_RANK from the environment, gloo or NCCL.

torchrun (torch.distributed.run) starts one process per rank and sets these variables; the
factory uses torch.distributed only to wait at barriers and to pass rank 0's refusal of a bad
output folder to every rank. Without torchrun (WORLD_SIZE unset or 1) nothing is initialised.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.run import Ranks


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise CardioInputError(name, f"must be a whole number, got {text!r}") from None


def torchrun_world() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when started by torchrun with more than one process."""
    world = _env_int("WORLD_SIZE")
    if world is None or world <= 1:
        return None
    rank = _env_int("RANK") or 0
    local = _env_int("LOCAL_RANK") or 0
    if not 0 <= rank < world:
        raise CardioInputError("RANK", f"needs 0 <= RANK < WORLD_SIZE, got {rank}/{world}")
    return rank, world, local


def device_for_rank(preference: str, local_rank: int) -> str:
    """Each rank on a node takes its own GPU (cuda:LOCAL_RANK) when CUDA is wanted and there."""
    wants_cuda = preference.startswith("cuda") or (
        preference == "auto" and torch.cuda.is_available()
    )
    if wants_cuda and preference in ("auto", "cuda"):
        return f"cuda:{local_rank % max(torch.cuda.device_count(), 1)}"
    return preference


def init_ranks(device: torch.device) -> Ranks:
    """Join the torchrun group (NCCL on CUDA, gloo on CPU); the Ranks the factory runs as."""
    import torch.distributed as dist

    found = torchrun_world()
    if found is None:
        return Ranks()
    rank, world, _ = found
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)

    def barrier() -> None:
        dist.barrier()

    def broadcast(value: Any) -> Any:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    return Ranks(rank=rank, world=world, barrier=barrier, broadcast=broadcast)


def close_ranks() -> None:
    """Leave the process group, if one was joined."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
