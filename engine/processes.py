"""Process hygiene: SIGTERM ends a run like Ctrl-C, and pool workers never outlive their parent.

``timeout``, systemd, Docker and cluster schedulers stop a job with SIGTERM; raising
:class:`Terminated` (a KeyboardInterrupt) there runs the same clean-up as Ctrl-C (staging
folders removed, pools shut down). A worker process dies with its parent even when the parent
is SIGKILLed: on Linux the kernel sends it SIGKILL (PR_SET_PDEATHSIG); everywhere a watcher
thread exits it once its parent is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

_PR_SET_PDEATHSIG = 1
_WATCH_EVERY_S = 0.5


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal other than SIGINT (SIGTERM, SIGHUP)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (and SIGHUP) raise :class:`Terminated` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: this worker ends when ``parent_pid`` ends, however it ends.

    SIGTERM goes back to its default (the parent's handler is inherited through fork).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # the parent may have died before prctl took effect; and not every system has prctl
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_WATCH_EVERY_S)
    os._exit(1)
