"""Device choice: CUDA when present, else CPU; mixed precision only where it pays."""

from __future__ import annotations

import contextlib

import torch

from cardio_explorer.engine.errors import CardioInputError


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


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op on CPU (this CPU has no bf16 units: 45x slower)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device) -> str:
    """Human-readable device name for the status bar and bench reports."""
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return f"CPU ({torch.get_num_threads()} threads)"
