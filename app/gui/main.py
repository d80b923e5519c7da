"""``cardio-explorer`` with no sub-command: the desktop window (or one scripted screenshot)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cardio_explorer.app.commands._precision import add_precision_argument
from cardio_explorer.app.gui.startup import check_display, prefer_xcb
from cardio_explorer.engine.errors import CardioInputError

log = logging.getLogger(__name__)

SCREENSHOT_TIMEOUT_S = 120.0
_QUIET = ("This plugin does not support",)  # the offscreen platform's notes on native widgets
_handler = None


def _quiet_offscreen_notes():
    """Drop the offscreen platform's per-widget notes (other Qt messages still reach stderr);
    returns the handler it replaced."""
    global _handler
    from PySide6.QtCore import qInstallMessageHandler  # start-up: see run()

    def handler(_mode, _context, message: str) -> None:
        if not message.startswith(_QUIET):
            sys.stderr.write(message + "\n")

    _handler = handler  # Qt keeps no reference of its own
    return qInstallMessageHandler(handler)


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc), else 0: launch time counts from here."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def build_parser() -> argparse.ArgumentParser:
    """Options of the window."""
    parser = argparse.ArgumentParser(
        prog="cardio-explorer",
        description="Open the desktop app on the bundled models (or the given checkpoints).",
    )
    parser.add_argument(
        "heart",
        nargs="*",
        type=Path,
        help="your own heart to open: a label NIfTI, an ED/ES pair or a subject folder",
    )
    parser.add_argument("--screenshot", type=Path, help="render, write this PNG and exit")
    parser.add_argument("--session", type=Path, help="restore a saved session JSON")
    parser.add_argument("--label-vae", type=Path, help="label VAE checkpoint (pathology morph)")
    parser.add_argument("--cheart", type=Path, help="CHeart checkpoint (3D+t from conditions)")
    parser.add_argument("--spade", type=Path, help="SPADE checkpoint (labels -> images)")
    parser.add_argument(
        "--device", default=None, help="auto, cpu or cuda (default: Edit > Preferences, else auto)"
    )
    add_precision_argument(parser)
    parser.add_argument("--size", help="window size WxH (default: 1400x900 or the screen)")
    parser.add_argument(
        "--timeout", type=float, default=SCREENSHOT_TIMEOUT_S, help="screenshot wait (s)"
    )
    return parser


def _window_size(text: str) -> tuple[int, int]:

    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CardioInputError("--size", f"expected WxH, e.g. 1400x900, got {text!r}") from None
    if width < 400 or height < 300:
        raise CardioInputError("--size", "the window needs at least 400x300")
    return width, height


def _check_heart_paths(paths: Sequence[Path]) -> None:
    """A heart path that does not exist is a typo (or a sub-command that is not one)."""

    for path in paths:
        if not Path(path).exists():
            raise CardioInputError(path, "not found (a heart file or folder; sub-commands: --help)")


def run(argv: Sequence[str] | None = None) -> int:
    """Open the window; with --screenshot, write the first rendered view and exit 0."""
    launch = time.perf_counter() - process_age_s()
    args = build_parser().parse_args(list(argv or []))
    if args.screenshot is not None and not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    prefer_xcb()
    try:
        check_display()  # Qt would abort with a core dump instead of saying what is missing
    except CardioInputError as error:
        print(f"cardio-explorer: error: {error}", file=sys.stderr)
        return 2
    # start-up: `cardio-explorer --help` (which lists this parser) and the display check above
    # run before Qt's widgets, torch and VTK load; a missing display then fails in milliseconds
    from PySide6.QtWidgets import QApplication

    from cardio_explorer.app.gui.controllers.preferences import (
        apply_preferences,
        load_preferences,
        preferred_device,
    )
    from cardio_explorer.app.gui.window import MainWindow
    from cardio_explorer.engine.device import choose_device, keep_freed_memory

    try:
        size = None if args.size is None else _window_size(args.size)
        _check_heart_paths(args.heart)
        prefs = load_preferences()
        device = choose_device(args.device or preferred_device(prefs))
    except CardioInputError as error:
        print(f"cardio-explorer: error: {error}", file=sys.stderr)
        return 2
    keep_freed_memory()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("cardio-explorer")
    offscreen = app.platformName() == "offscreen"
    previous = _quiet_offscreen_notes() if offscreen else None
    try:
        paths = {"label_vae": args.label_vae, "cheart": args.cheart, "spade": args.spade}
        # --precision on the command line (main's window option) wins over the preference
        for note in apply_preferences(prefs, cli_precision=args.precision):
            log.info("preferences: %s", note)
        window = MainWindow(_first_engines(paths, device, args.session), launch_time=launch)
        if size is not None:
            window.resize(*size)
        if args.session is not None:
            opened = window.exports.open_session(args.session)
            if opened is None and args.screenshot is not None:
                # headless: the error was logged (one line on stderr); no picture, exit 2
                close_now(app, window)
                return 2
        window.show()
        window.load_pending_models(paths)
        if args.heart:
            window.hearts.open_guarded(args.heart)
        if args.screenshot is None:
            code = int(app.exec())
            close_now(app, window)
            return code
        return _screenshot(app, window, args.screenshot, args.timeout)
    finally:
        if offscreen:
            from PySide6.QtCore import qInstallMessageHandler  # start-up: see run()

            qInstallMessageHandler(previous)


def _first_engines(paths: dict, device, session: Path | None):
    """The models the first heart needs, loaded now; the others load on the worker after it.

    The label VAE draws the first heart (CHeart when there is no label VAE); a session may
    need any model at once, so then all load now.
    """
    from cardio_explorer.app.jobs.models import load_engines, load_kind  # start-up: torch

    if session is not None:
        return load_engines(paths, device)
    engines = load_engines(paths, device, kinds=("label_vae",))
    if engines.morph is None:
        engines = engines.with_slot(load_kind("cheart", paths.get("cheart"), device))
    return engines


def wait_until_drawn(app, window, timeout_s: float) -> bool:
    """Process events until the first results are drawn and all requests settled."""
    deadline = time.perf_counter() + timeout_s
    engines = window.engines
    expect_heart = engines.morph is not None or engines.cheart is not None
    while time.perf_counter() < deadline:
        app.processEvents()
        drawn = window.display.scene is not None or not expect_heart
        if drawn and window.settled():
            app.processEvents()
            return True
        if window.errors and window.settled() and window.display.scene is None:
            return False
        time.sleep(0.01)
    return False


def _screenshot(app, window, path: Path, timeout_s: float) -> int:
    from cardio_explorer.viewer.screenshot import save_screenshot  # start-up: Qt and VTK

    ok = wait_until_drawn(app, window, timeout_s)
    code = 0
    try:
        if not ok:
            print("cardio-explorer: the first results were not drawn in time", file=sys.stderr)
            code = 1
        window.views.heart.render()
        written = save_screenshot(window, path)
        print(f"wrote {written}")
        if window.first_heart_s is not None:
            print(f"first heart drawn {window.first_heart_s:.2f} s after launch")
    except CardioInputError as error:
        print(f"cardio-explorer: error: {error}", file=sys.stderr)
        code = 2
    for message in window.errors:
        print(f"cardio-explorer: {message}", file=sys.stderr)
    close_now(app, window)
    return code


def close_now(app, window) -> None:
    """Close and delete the window while this frame still holds it.

    Left to Python's cycle collector, pyqtgraph's items can lose their Python side before Qt
    deletes the scene that holds them, and that deletion then crashes.
    """
    from PySide6.QtCore import QEvent  # start-up: see run()

    window.close()
    window.deleteLater()
    app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()
