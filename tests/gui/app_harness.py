"""Helpers for the app tests: tiny checkpoints (built once per process) and a settled window."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path

import torch
from tiny_models import (
    tiny_cheart_checkpoint,
    tiny_label_vae_checkpoint,
    tiny_spade_checkpoint,
    write_tiny_cohort,
)

from cardio_explorer.app.gui.window import MainWindow
from cardio_explorer.app.jobs.models import load_engines
from cardio_explorer.app.jobs.state import AppState

_CACHE: dict[str, Path] = {}
SETTLE_TIMEOUT_MS = 30_000


def tiny_checkpoints() -> dict[str, Path]:
    """Paths of a tiny label VAE (class-balanced, with atlas), CHeart and SPADE, and a cohort."""
    if not _CACHE:
        root = Path(tempfile.mkdtemp(prefix="cardio-app-tests-"))
        atexit.register(shutil.rmtree, root, True)
        cohort = write_tiny_cohort(root / "cohort")
        _CACHE.update(
            cohort=cohort,
            label_vae=tiny_label_vae_checkpoint(
                cohort, root / "label_vae.safetensors", balanced=True
            ),
            # with a prior of one component per group, as the bundled model's
            cheart=tiny_cheart_checkpoint(root / "cheart.safetensors", groups=True),
            cheart_plain=tiny_cheart_checkpoint(root / "cheart_plain.safetensors"),
            spade=tiny_spade_checkpoint(root / "spade.safetensors"),
        )
    return dict(_CACHE)


def open_window(
    qtbot,
    kinds=("label_vae", "cheart", "spade"),
    state: AppState | None = None,
    runner=None,
    paths: dict[str, Path] | None = None,
) -> MainWindow:
    """A shown MainWindow on the tiny models of ``kinds`` (others absent), settled; ``paths``
    replaces some of them (e.g. {'cheart': tiny_checkpoints()['cheart_plain']})."""
    paths = {**tiny_checkpoints(), **(paths or {})}
    missing = Path(tempfile.gettempdir()) / "cardio-explorer-no-such-model.safetensors"
    engines = load_engines(
        {k: (paths[k] if k in kinds else missing) for k in ("label_vae", "cheart", "spade")},
        torch.device("cpu"),
    )
    extra = {} if runner is None else {"runner": runner}
    window = MainWindow(engines, state=state, **extra)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    settle(qtbot, window)
    return window


def settle(qtbot, window: MainWindow, timeout_ms: int = SETTLE_TIMEOUT_MS) -> None:
    """Wait until every submitted request came back and was drawn."""
    qtbot.waitUntil(window.settled, timeout=timeout_ms)
    qtbot.wait(1)


def wait_for(qtbot, condition, timeout_ms: int = SETTLE_TIMEOUT_MS) -> float:
    """Wait for a condition; returns the seconds it took."""
    start = time.perf_counter()
    qtbot.waitUntil(condition, timeout=timeout_ms)
    return time.perf_counter() - start
