"""Bench: synthesise one 32-slice 128 x 128 image stack from labels with SPADE."""

from __future__ import annotations

import numpy as np
import torch

from cardio_explorer import resources
from cardio_explorer.app.commands.bench import BenchResult, summarise, time_call
from cardio_explorer.engine.spade.config import LEAN
from cardio_explorer.engine.spade.inference import StyleSpec, synthesise_images
from cardio_explorer.engine.spade.network import SpadeModel, load_spade, prepare_for_inference
from cardio_explorer.engine.volume import LabelVolume

CPU_TARGET_MS = 30.0
SLICES = 32


def _model(device: torch.device) -> tuple[SpadeModel, str]:
    path = resources.bundled_checkpoint("spade")
    if path.is_file():
        return load_spade(path, device), "bundled"
    torch.manual_seed(0)
    # BatchNorm's running stats differ after training, not the arithmetic: timings carry over.
    return prepare_for_inference(SpadeModel(LEAN), device), "lean, random weights: no bundle"


def bench_labels(size: int, slices: int = SLICES) -> LabelVolume:
    """A short-axis-like label stack: LV pool, myocardial ring and RV crescent per slice."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32) - size / 2
    data = np.zeros((slices, size, size), dtype=np.uint8)
    for k in range(slices):
        r = size * (0.08 + 0.06 * np.sin(np.pi * (k + 1) / (slices + 1)))
        d = np.hypot(yy, xx)
        data[k][np.hypot(yy, xx + 1.9 * r) < 1.3 * r] = 3
        data[k][d < r + size * 0.05] = 2
        data[k][d < r] = 1
    return LabelVolume.from_array(data, (8.0, 1.5, 1.5), name="bench labels")


def measure(device: torch.device, repeats: int) -> list[BenchResult]:
    """Median time to synthesise a 32-slice 128 x 128 stack (images back on the host)."""
    model, what = _model(device)
    labels = bench_labels(model.config.image_size)
    style = StyleSpec(seed=0)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    times = time_call(lambda: synthesise_images(model, labels, style, device), repeats, 3, sync)
    target = CPU_TARGET_MS if device.type == "cpu" else None
    size = model.config.image_size
    name = f"SPADE ({what}): synthesise {SLICES} x {size} x {size}"
    return [summarise(name, device, times, target)]
