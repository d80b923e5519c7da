"""``cardio-explorer evaluate KIND``: measure a checkpoint on held-out subjects, write a report."""

from __future__ import annotations

import argparse

from cardio_explorer.app.commands import register_kind_group

# One module per model kind: app/commands/evaluate_<kind>.py with register(subparsers).
EVALUATORS: tuple[str, ...] = ("label_vae", "cheart", "spade", "utility")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command and one sub-command per model kind."""
    register_kind_group(
        subparsers,
        "evaluate",
        "evaluate a checkpoint; writes report.json and report.md",
        EVALUATORS,
    )
