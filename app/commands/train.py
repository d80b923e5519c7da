"""``cardio-explorer train KIND``: train one of the three models on a cohort folder."""

from __future__ import annotations

import argparse

from cardio_explorer.app.commands import register_kind_group

# One module per model kind: app/commands/train_<kind>.py with register(subparsers).
TRAINERS: tuple[str, ...] = ("label_vae", "cheart", "spade")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command and one sub-command per model kind."""
    register_kind_group(subparsers, "train", "train a model on a cohort folder", TRAINERS)
