"""Work-arounds for bugs in the installed Qt bindings, each detected at run time, not by version.

PySide6 6.12.0 on Python 3.11: every Python call of ``SignalInstance.emit`` returns ``True``
without a new reference, so each emit steals one reference to ``True``. pyqtgraph emits from
Python all the time; after a few thousand emits ``True``'s count reaches zero and CPython
aborts ("bool_dealloc: deallocating True or False"), mid-run or at exit. Python >= 3.12 is
immune (``True`` is immortal there), and so is a fixed PySide6: the probe then finds no loss.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_PROBE_EMITS = 16
_installed = False


class _Probe(QObject):
    ping = Signal()


def emit_leaks_true() -> bool:
    """True when a Python-level signal emit loses a reference to ``True`` (the PySide6 bug)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBE_EMITS):
        probe.ping.emit()
    return before - sys.getrefcount(True) >= _PROBE_EMITS


def install_emit_refcount_fix() -> bool:
    """Give back the reference each emit steals, when (and only when) emit is found leaking.

    Idempotent; returns whether the fix is active.
    """
    global _installed
    if _installed:
        return True
    if not emit_leaks_true():
        return False
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None
    original = SignalInstance.emit

    def emit(self, *args):
        result = original(self, *args)
        if result is True or result is False:
            incref(result)  # the reference the binding forgot to add
        return result

    SignalInstance.emit = emit
    _installed = True
    if emit_leaks_true():  # another kind of leak: undo rather than guess
        SignalInstance.emit = original
        _installed = False
    return _installed
