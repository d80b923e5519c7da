"""What the ``train`` commands share: their common options and the spelled-out command line."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cardio_explorer.app.commands._precision import add_precision_argument
from cardio_explorer.app.commands._ranks import is_rank_zero


def add_common_training_arguments(
    parser: argparse.ArgumentParser,
    *,
    epochs: int,
    batch_size: int | None,
    seed: int,
    out: Path,
    batch_size_help: str | None = None,
) -> None:
    """--epochs, --batch-size, --seed, --device, --precision, --out, --resume, --threads,
    --no-progress, --overwrite."""
    parser.add_argument("--epochs", type=int, default=epochs, help="total epochs")
    per_process = "per process: under torchrun each step trains on N processes x this batch"
    parser.add_argument(
        "--batch-size",
        type=int,
        default=batch_size,
        help=f"{batch_size_help}; {per_process}" if batch_size_help else per_process,
    )
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add_precision_argument(parser)
    parser.add_argument("--out", type=Path, default=out, help="model checkpoint to write")
    parser.add_argument(
        "--resume", type=Path, default=None, help="a .state.safetensors file to continue from"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        default=not is_rank_zero(),  # under torchrun rank 0 alone shows the bars
        help="no progress bars (under torchrun, only rank 0 shows them)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out and its state file"
    )


def check_training_outputs(args: argparse.Namespace) -> None:
    """Refuse, before training, an --out that is a folder, exists, or whose state file exists.

    Resuming from OUT's own state file continues that run, so it may replace OUT and the state.
    """
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.io.atomic import check_output_file
    from cardio_explorer.engine.nn.training import state_path_for

    state = state_path_for(args.out)
    same_run = args.resume is not None and Path(args.resume).absolute() == state.absolute()
    for path in (args.out, state):
        check_output_file(path, args.overwrite or same_run)


def command_line(
    kind: str,
    args: argparse.Namespace,
    options: Sequence[tuple[str, Any]],
    switches: Sequence[str] = (),
) -> str:
    """``cardio-explorer train KIND --data DATA``, every option with a value, every switch on.

    ``options`` are (flag, value) pairs (None: left out); ``switches`` are store-true flags,
    read from ``args``. The result reproduces the run.
    """
    parts = ["cardio-explorer", "train", kind, "--data", str(args.data)]
    for flag, value in options:
        if value is not None:
            parts += [flag, str(value)]
    parts += [flag for flag in switches if getattr(args, flag[2:].replace("-", "_"))]
    if getattr(args, "precision", "auto") != "auto":
        parts += ["--precision", args.precision]
    return " ".join(shlex.quote(p) for p in parts)
