"""The PySide6 emit reference leak is neutralised once the viewer package is imported."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal

import cardio_explorer.viewer  # noqa: F401  (installs the fix)
from cardio_explorer.viewer.qt_compat import emit_leaks_true, install_emit_refcount_fix

pytestmark = pytest.mark.gui


class _Emitter(QObject):
    value = Signal(int)


def test_emits_no_longer_steal_references_to_true():
    assert not emit_leaks_true()
    emitter = _Emitter()
    received: list[int] = []
    emitter.value.connect(received.append)
    before = sys.getrefcount(True)
    for i in range(500):
        emitter.value.emit(i)
    assert sys.getrefcount(True) - before > -5
    assert received == list(range(500))
    install_emit_refcount_fix()  # idempotent
    assert not emit_leaks_true()
