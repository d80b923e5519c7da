"""Bench: time to generate one 20-frame CHeart sequence (z + conditions -> uint8 labels).

CPU: the bundled model (or the lean config with random weights when none is bundled yet),
target 300 ms, labels on the host. CUDA: the paper configuration with random weights (the
reference takes 19.3 ms on an H100; target 3 ms) with labels left on the GPU, plus the copy of
the labels to the host as its own line.
"""

from __future__ import annotations

import numpy as np
import torch

from cardio_explorer.app.commands.bench import BenchResult, summarise, time_call

CPU_TARGET_MS = 60.0
CUDA_TARGET_MS = 3.0


def _model(device: torch.device, paper: bool) -> tuple[object, str]:
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer import resources
    from cardio_explorer.engine.cheart.config import LEAN, PAPER
    from cardio_explorer.engine.cheart.model import load_model
    from cardio_explorer.engine.cheart.toy import random_model

    if not paper and resources.bundled_checkpoint("cheart").is_file():
        return load_model(None, device), "bundled"
    if paper:
        return random_model(PAPER, device=device), "paper, random weights"
    return random_model(LEAN, device=device), "lean, random weights"


def measure(device: torch.device, repeats: int) -> list[BenchResult]:
    """Median generation time of one 20-frame sequence on ``device``."""
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.cheart.inference import decode_from_z, labels_on_device

    results = []
    if device.type == "cpu":
        model, name = _model(device, paper=False)
        conditions = [model.stats.typical("F")]
        z = np.zeros((1, model.config.z_dim), dtype=np.float32)
        times = time_call(lambda: decode_from_z(model, z, conditions), repeats)
        results.append(
            summarise(f"cheart: generate 20 frames ({name})", device, times, CPU_TARGET_MS)
        )
        if model.config.motion_code:  # the default above is calibrated (calibration.py)
            plain = time_call(lambda: decode_from_z(model, z, conditions, calibrate=False), repeats)
            results.append(
                summarise(f"cheart: generate 20 frames uncalibrated ({name})", device, plain)
            )
        return results
    torch.backends.cudnn.benchmark = True
    model, name = _model(device, paper=True)
    conditions = [model.stats.typical("F")]
    z = torch.zeros((1, model.config.z_dim), device=device)
    sync = torch.cuda.synchronize
    times = time_call(lambda: labels_on_device(model, z, conditions), repeats, warmup=5, sync=sync)
    results.append(
        summarise(f"cheart: generate 20 frames on GPU ({name})", device, times, CUDA_TARGET_MS)
    )
    times = time_call(lambda: decode_from_z(model, z, conditions), repeats, warmup=5, sync=sync)
    results.append(summarise(f"cheart: generate 20 frames + copy to host ({name})", device, times))
    return results
