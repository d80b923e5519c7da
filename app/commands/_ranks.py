"""Command output under torchrun: rank 0 prints, the other ranks log the same lines at debug.

torchrun starts one process per rank, all writing to the same terminal; a line every rank would
print (the data read, the device, the precision) then shows once per rank. These helpers read
torchrun's RANK and WORLD_SIZE from the environment, so they work before any process group is
joined and need no torch import.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def launch_rank() -> int:
    """This process's torchrun RANK; 0 without torchrun (WORLD_SIZE unset or 1).

    A RANK or WORLD_SIZE that is not a whole number reads as 0 here: the engine's own check
    (engine/nn/distributed.py, engine/factory/distributed.py) names it before any work.
    """
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return 0
        return max(0, int(os.environ.get("RANK", "0")))
    except ValueError:
        return 0


def is_rank_zero() -> bool:
    """True unless this is a torchrun rank other than 0."""
    return launch_rank() == 0


def say(text: str) -> None:
    """One line on stdout on rank 0 (one write, so ranks' lines never run together), a debug
    log line on the other ranks (shown with ``-v``)."""
    if is_rank_zero():
        sys.stdout.write(f"{text}\n")
        sys.stdout.flush()
    else:
        log.debug("%s", text)


def log_settings(verbose: bool) -> tuple[int, str]:
    """(level, format) for the command's logging: under torchrun the other ranks keep only
    warnings unless ``-v`` (their info lines repeat rank 0's), and name their rank."""
    rank = launch_rank()
    quiet = logging.INFO if rank == 0 else logging.WARNING
    level = logging.DEBUG if verbose else quiet
    who = f"rank {rank}: " if rank else ""
    return level, f"%(levelname)s {who}%(message)s"
