"""Shared fixtures; Qt runs offscreen unless a real display is present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Property tests search for bad input with a fixed, derandomised profile: CI is deterministic
# and quick; CARDIO_HYPOTHESIS_PROFILE=deep searches longer by hand.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=40,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("deep", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("CARDIO_HYPOTHESIS_PROFILE", "ci"))

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "mnms-sample"
ACDC = Path(__file__).resolve().parents[2] / "shared" / "acdc"


@pytest.fixture(autouse=True)
def _xcb_only(request):
    """Tests marked ``xcb`` (focus, keys, window sizes) run on a real X server only."""
    if request.node.get_closest_marker("xcb") is None:
        return
    if not os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        pytest.skip("needs a real X server: QT_QPA_PLATFORM=xcb xvfb-run -a pytest -m xcb")


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


@pytest.fixture
def acdc_dir() -> Path:
    """The real ACDC subjects beside the project; skips the test when absent."""
    if not ACDC.is_dir():
        pytest.skip("shared/acdc is not present")
    return ACDC


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module: tiny networks gain nothing from 2 threads, and on a
    shared 2-core CPU two spinning OpenMP threads slow each step by 10x or more."""
    import torch  # here, not at the top: the viewer's tests run without torch loaded

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
