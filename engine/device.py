"""Device and precision: CUDA when present, else CPU; bf16 autocast where the hardware has it.

One precision policy for every network path (``auto | fp32 | bf16``). ``auto`` picks bf16 on
CUDA and on CPUs with bf16 matrix units (AVX512-BF16 or AMX tiles, as torch reports them), and
fp32 everywhere else: on a CPU without them bf16 is emulated and slower than fp32. Weights stay
fp32; :func:`autocast` runs the forward passes in bf16. The policy is process-wide (a plain
module value, not a context variable, so that worker threads see what the command line or the
app's preferences set).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator

import torch

from cardio_explorer.engine.errors import CardioInputError

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
_policy = "auto"


def choose_device(preference: str = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU; 'cpu' / 'cuda' / 'cuda:N' are honoured."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise CardioInputError("--device", f"unknown device {preference!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CardioInputError("--device", "CUDA was asked for but no CUDA GPU is available")
    return device


def cpu_supports_bf16() -> bool:
    """True when this CPU has bf16 matrix units (AVX512-BF16 or AMX tiles), as torch sees them.

    ``CARDIO_NO_CPU_BF16=1`` reports False (to try the fp32 fallback on a machine that has them).
    """
    if os.environ.get("CARDIO_NO_CPU_BF16") == "1":
        return False
    return bool({"avx512_bf16", "amx_tile"} & set(cpu_flags()))


def cpu_flags() -> list[str]:
    """The CPU features that decide the precision, as torch reports them (for bench reports)."""
    names = {
        "avx2": "_is_avx2_supported",
        "avx512": "_is_avx512_supported",
        "avx512_bf16": "_is_avx512_bf16_supported",
        "amx_tile": "_is_amx_tile_supported",
    }
    return [flag for flag, name in names.items() if bool(getattr(torch.cpu, name, _no)())]


def _no() -> bool:
    return False


def check_precision(preference: str) -> str:
    """``preference`` if it is one of PRECISIONS, else one clear error naming --precision."""
    if preference not in PRECISIONS:
        raise CardioInputError(
            "--precision", f"must be one of {', '.join(PRECISIONS)}, got {preference!r}"
        )
    return preference


def resolve_precision(device: torch.device | str, preference: str | None = None) -> str:
    """'fp32' or 'bf16' for ``device`` under ``preference`` (default: the process policy).

    An explicit 'bf16' is honoured on any device (slow but correct where emulated).
    """
    preference = check_precision(_policy if preference is None else preference)
    if preference != "auto":
        return preference
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16"
    return "bf16" if device.type == "cpu" and cpu_supports_bf16() else "fp32"


def set_precision(preference: str) -> None:
    """Set the process-wide precision policy ('auto', 'fp32' or 'bf16')."""
    global _policy
    _policy = check_precision(preference)


def precision_policy() -> str:
    """The process-wide policy as set ('auto', 'fp32' or 'bf16')."""
    return _policy


def current_precision(device: torch.device | str) -> str:
    """The precision networks on ``device`` run in now: 'fp32' or 'bf16'."""
    return resolve_precision(device)


@contextlib.contextmanager
def precision_scope(preference: str) -> Iterator[None]:
    """Run a block under another policy, then restore the previous one."""
    global _policy
    previous = _policy
    set_precision(preference)
    try:
        yield
    finally:
        _policy = previous


def autocast(device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when the policy resolves to bf16 there; else a no-op."""
    device = torch.device(device)
    if enabled and device.type in ("cpu", "cuda") and resolve_precision(device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def in_fp32(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` in fp32 even inside a bf16 autocast region.

    For a network's last layer when its output is argmaxed: bf16 keeps 8 bits of mantissa, so
    logits of about 10 are rounded in steps of 0.06 and near-ties at label boundaries flip.
    """
    with torch.autocast(x.device.type, enabled=False):
        return module(x.float())


# glibc's mallopt parameters, and the values set: large blocks come from the heap up to 32 MB
# (glibc's largest mmap threshold on 64-bit), and up to 512 MB of freed heap is kept.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 2**20
_TRIM_THRESHOLD_BYTES = 512 * 2**20


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed large blocks instead of unmapping them; True when it took.

    A CHeart generation allocates and frees tens of MB per call: by default glibc maps such
    blocks fresh each time and the kernel zeroes every page again, which made the 20-frame
    generation swing between 60 and 83 ms on 2 cores (57-61 ms with this). The price is a
    resident size that stays at its peak. Linux with glibc only; a no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    trim_ok = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    return bool(mmap_ok and trim_ok)


def describe(device: torch.device) -> str:
    """Human-readable device name for the status bar and bench reports."""
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'' if threads == 1 else 's'})"
