"""Soak: 500 random control changes, processed as they come, with no error and bounded memory."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest
from app_harness import open_window, settle
from PySide6.QtWidgets import QApplication

pytestmark = pytest.mark.gui

N_CHANGES = 500
WARMUP = 100


def _rss_mb() -> float:
    """Resident memory of this process in MB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _random_change(window, rng: random.Random) -> None:
    panel, state = window.morph_panel, window.state
    action = rng.randrange(12)
    if action <= 3:  # slider moves are the most common thing a user does
        panel.alpha.setValue(rng.randrange(101))
    elif action == 4:
        panel.target.setCurrentIndex(rng.randrange(panel.target.count()))
    elif action == 5:
        (panel.phase_ed if rng.random() < 0.5 else panel.phase_es).click()
    elif action == 6:
        panel.correlated.click()
    elif action == 7:
        panel.seed.setValue(rng.randrange(4))
    elif action == 8:
        panel.subject.setCurrentIndex(rng.randrange(panel.subject.count()))
    elif action == 9:
        (state.undo if rng.random() < 0.6 else state.redo)()
    elif action == 10:
        window.conditions_panel.spins["age"].setValue(rng.uniform(20, 90))
        if rng.random() < 0.2:
            window.conditions_panel.generate.click()
    else:
        window.playback.toggle()
        state.set("frame", rng.randrange(6))


def test_500_random_control_changes(qtbot):
    window = open_window(qtbot)
    rng = random.Random(7)
    tracemalloc.start()
    try:
        baseline_rss = baseline_py = None
        for i in range(N_CHANGES):
            _random_change(window, rng)
            QApplication.processEvents()
            if i == WARMUP:
                settle(qtbot, window)
                # the cached morph path (one, of bounded size) is full at both measurements
                qtbot.waitUntil(lambda: window.morph.path.complete, timeout=60_000)
                baseline_rss = _rss_mb()
                baseline_py = tracemalloc.get_traced_memory()[0]
        window.playback.set_playing(False)
        settle(qtbot, window, timeout_ms=60_000)
        qtbot.waitUntil(lambda: window.morph.path.complete, timeout=60_000)
        growth_rss = _rss_mb() - baseline_rss
        growth_py = (tracemalloc.get_traced_memory()[0] - baseline_py) / 2**20
    finally:
        tracemalloc.stop()
    print(f"soak: RSS +{growth_rss:.1f} MB, Python heap +{growth_py:.2f} MB")
    assert window.errors == []
    assert window.display.scene in ("morph", "sequence")
    # the last request of each lane was drawn: nothing stale is left on screen
    assert window.router.settled("morph")
    assert growth_py < 20, f"Python heap grew {growth_py:.1f} MB"
    assert growth_rss < 150, f"RSS grew {growth_rss:.1f} MB"
