"""Sub-commands of the cardio-explorer command line, one module each."""

from __future__ import annotations

import argparse
import importlib


def register_kind_group(
    subparsers: argparse._SubParsersAction, command: str, help_text: str, kinds: tuple[str, ...]
) -> None:
    """Add ``command KIND``; each kind lives in app/commands/<command>_<kind>.py."""
    parser = subparsers.add_parser(command, help=help_text, description=help_text)
    kind_parsers = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind in kinds:
        module = importlib.import_module(f"cardio_explorer.app.commands.{command}_{kind}")
        module.register(kind_parsers)
