"""The installed PySide6 keeps None/True refcounts balanced (6.12.0 on CPython 3.11 does not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.gui

CALLS = 2_000
MAX_DRIFT = 100

# Runs in a child so a leaking PySide6 that aborts the interpreter fails this test, not pytest.
_PROBE = textwrap.dedent(
    f"""
    import json
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QApplication, QLabel

    class Emitter(QObject):
        fired = Signal(int)

    app = QApplication(["probe", "-platform", "offscreen"])
    label = QLabel()
    none_before = sys.getrefcount(None)
    for _ in range({CALLS}):
        label.setText("a")  # a void Qt method: returns None
    none_after = sys.getrefcount(None)

    emitter = Emitter()
    received = []
    emitter.fired.connect(received.append)
    true_before = sys.getrefcount(True)
    for _ in range({CALLS}):
        emitter.fired.emit(1)
    true_after = sys.getrefcount(True)

    print(json.dumps({{
        "none_drift": none_after - none_before,
        "true_drift": true_after - true_before,
        "received": len(received),
    }}))
    """
)


def test_void_calls_and_emits_keep_none_and_true_refcounts() -> None:
    """2,000 QLabel.setText calls and 2,000 Signal.emits move neither refcount by 100."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    child = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert child.returncode == 0, f"probe exited {child.returncode}:\n{child.stderr[-2000:]}"
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["received"] == CALLS
    assert abs(result["none_drift"]) < MAX_DRIFT, f"void Qt calls leak None: {result}"
    assert abs(result["true_drift"]) < MAX_DRIFT, f"Signal.emit leaks True: {result}"
