"""Keep the window alive under a reference bug of the installed Qt bindings (found at run time).

PySide6 6.12.0 on Python 3.11: every Python call of a C++ method that returns void
(``setText``, ``setValue``, ``update``, ``processEvents``, ``QTimer.stop`` ...) hands back
``None`` without a new reference, so each call steals one reference to ``None``. A window makes
thousands of such calls a minute (playback alone, dozens per frame); once ``None``'s count
reaches zero CPython aborts ("none_dealloc: deallocating None"). Python >= 3.12 is immune
(``None`` is immortal there), and so is a fixed PySide6: the probe then finds no loss.

The cure is what Python 3.12 does: give ``None`` a reference count so large that no session can
exhaust it. (``viewer.qt_compat`` already repairs the same bug for signal emits and ``True``.)
"""

from __future__ import annotations

import ctypes
import sys

_PROBE_CALLS = 16
_PINNED_REFERENCES = 1 << 40  # at a million void calls a second: 35 years
_pinned = False


def void_call_leaks_none() -> bool:
    """True when calling a void Qt method from Python loses a reference to ``None``."""
    from PySide6.QtCore import QTimer

    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        timer.stop()
    return before - sys.getrefcount(None) >= _PROBE_CALLS


def pin_none() -> bool:
    """Make ``None`` effectively immortal when (and only when) void calls are found leaking.

    Idempotent; returns whether the fix is active.
    """
    global _pinned
    if _pinned:
        return True
    if not void_call_leaks_none():
        return False
    # ob_refcnt is the first field of every object in CPython's release builds
    ctypes.c_ssize_t.from_address(id(None)).value += _PINNED_REFERENCES
    _pinned = True
    return True
