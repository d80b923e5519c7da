"""Shared fixtures; Qt runs offscreen unless a real display is present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "mnms-sample"


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(1234)


@pytest.fixture
def realdata_dir() -> Path:
    """The real M&Ms sample folder beside the project; skips the test when absent."""
    if not REALDATA.is_dir():
        pytest.skip("shared/realdata/mnms-sample is not present")
    return REALDATA
