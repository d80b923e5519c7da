"""The ``cardio-explorer`` command: no sub-command opens the GUI; sub-commands run headless."""

from __future__ import annotations

import argparse
import importlib
import logging
import shlex
import sys
from collections.abc import Sequence

from cardio_explorer import __version__
from cardio_explorer.app.commands._precision import precision_from_args
from cardio_explorer.app.commands._ranks import log_settings
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.processes import Terminated, sigterm_as_interrupt

# Each module in app/commands registers one sub-command: ``register(subparsers)`` adds a parser
# whose ``func(args) -> int`` runs it. Modules are imported by name so that a broken one names
# itself in the error instead of taking the whole command line down.
COMMAND_MODULES = (
    "train",
    "evaluate",
    "bench",
    "cohort",
    "synthesize",
    "labels",
    "atlas",
)

_HELP = ("-h", "--help", "--version")


def build_parser(commands: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The argument parser with the given sub-commands (default: all)."""
    parser = argparse.ArgumentParser(
        prog="cardio-explorer",
        description="Labelled synthetic hearts and a window into generative models of the heart. "
        "With no sub-command, opens the desktop app on the bundled models.",
        epilog=_window_options_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        module = importlib.import_module(f"cardio_explorer.app.commands.{name}")
        module.register(subparsers)
    return parser


def _window_options_help() -> str:
    """The window's own options, listed under the sub-commands in the top-level help."""
    # start-up: only the help text needs the window's parser (the module imports no Qt)
    from cardio_explorer.app.gui.main import build_parser as window_parser

    options = window_parser().format_help().split("options:\n", 1)[-1]
    lines = [line for line in options.splitlines() if not line.lstrip().startswith("-h, --help")]
    return "window options (no sub-command):\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = _first_word(argv)
    # Only the sub-command asked for is imported (each pulls in torch and friends: seconds);
    # the top-level help lists them all, the window needs none.
    if first in COMMAND_MODULES or first in _HELP:
        parser = build_parser((first,) if first in COMMAND_MODULES else COMMAND_MODULES)
        args, rest = parser.parse_known_args(argv)
    else:  # the window's options take values (--screenshot FILE) argparse would read as commands
        parser = build_parser(())
        verbose = [a for a in argv if a in ("-v", "--verbose")]
        args, rest = parser.parse_known_args(verbose)[0], [a for a in argv if a not in verbose]
    level, layout = log_settings(args.verbose)  # torchrun's other ranks: warnings unless -v
    logging.basicConfig(level=level, format=layout)
    if args.command is None:
        return _run_gui(parser, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.command_line = shlex.join(["cardio-explorer", *argv])  # for provenance records
    # here, not at the top: the top-level help and the window's start need no torch import
    from cardio_explorer.engine.device import keep_freed_memory

    keep_freed_memory()
    try:
        with precision_from_args(args), sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except CardioInputError as error:
        print(f"cardio-explorer {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Terminated as stop:
        print(f"terminated ({stop})", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _first_word(argv: Sequence[str]) -> str | None:
    """The first argument after the global -v: a sub-command, a help flag or a window option."""
    return next((a for a in argv if a not in ("-v", "--verbose")), None)


def _run_gui(parser: argparse.ArgumentParser, rest: list[str]) -> int:
    try:
        gui = importlib.import_module("cardio_explorer.app.gui.main")
    except ModuleNotFoundError as error:
        if error.name != "cardio_explorer.app.gui.main":
            raise
        parser.print_help()
        print(
            "\nThe desktop window is not part of this build yet; use a sub-command.",
            file=sys.stderr,
        )
        return 1
    return int(gui.run(rest))


if __name__ == "__main__":
    sys.exit(main())
