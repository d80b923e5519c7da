"""The ``--precision`` option shared by train, evaluate and synthesize."""

from __future__ import annotations

import argparse
import contextlib

# The names are the engine's (engine.device.PRECISIONS); spelled out here so that building the
# parser does not import torch.
PRECISION_CHOICES = ("auto", "fp32", "bf16")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32|bf16`` (default auto: bf16 where the CPU or GPU has bf16 units)."""
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="network precision: auto (bf16 on CUDA and on CPUs with bf16 units, else fp32), "
        "fp32 or bf16; weights stay fp32 (default: auto)",
    )


def add_no_amp_alias(parser: argparse.ArgumentParser) -> None:
    """``--no-amp``, the training commands' older spelling of ``--precision fp32``."""
    parser.add_argument(
        "--no-amp",
        dest="precision",
        action="store_const",
        const="fp32",
        help="same as --precision fp32 (kept for older command lines)",
    )


def precision_from_args(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The engine's precision policy set from ``--precision`` for the command's run, then
    restored; a no-op for commands without the option (bench runs both side by side)."""
    precision = getattr(args, "precision", None)
    if precision not in PRECISION_CHOICES:
        return contextlib.nullcontext()
    from cardio_explorer.engine.device import precision_scope  # torch: only when needed

    return precision_scope(precision)
