"""Bench: how wide a CHeart fits issue 19's budget (20 frames in <= 100 ms, bf16, 2 cores).

Each config has random weights, so its decoded frame 0 is no heart; every config therefore
moves the same heart (the bundled model's frame 0 at typical conditions, or a box-shaped one
when none is bundled), so the motion is computed over a heart-sized box as in real generation.
"""

from __future__ import annotations

import numpy as np
import torch

from cardio_explorer.app.commands.bench import BenchResult, summarise, time_call

TARGET_MS = 100.0
# (name, encoder channels, decoder channels): the lean widths x 1 to x 4, and the paper's
# channels on the lean grid (its own 64 x 128 x 128 grid is 8x the voxels; see the README).
WIDTHS = (
    ("lean x1", (16, 32, 64, 64), (64, 32, 16, 16)),
    ("lean x1.5", (24, 48, 96, 96), (96, 48, 24, 24)),
    ("lean x2", (32, 64, 128, 128), (128, 64, 32, 32)),
    ("lean x3", (48, 96, 192, 192), (192, 96, 48, 48)),
    ("lean x4", (64, 128, 256, 256), (256, 128, 64, 64)),
    ("paper channels", (8, 16, 32, 32), (32, 16, 8, 4)),
)


def _heart(device: torch.device) -> np.ndarray:
    """A heart-sized frame 0 on the lean grid (uint8 [1, D, H, W])."""
    from cardio_explorer import resources
    from cardio_explorer.engine.cheart.inference import decode_from_z
    from cardio_explorer.engine.cheart.model import load_model

    if resources.bundled_checkpoint("cheart").is_file():
        model = load_model(None, device)
        z = np.zeros((1, model.config.z_dim), dtype=np.float32)
        return decode_from_z(model, z, [model.stats.typical("F")])[0][:, 0]
    heart = np.zeros((1, 32, 64, 64), dtype=np.uint8)
    heart[0, 4:24, 16:40, 16:40] = 2
    heart[0, 4:24, 20:36, 20:36] = 1
    heart[0, 4:24, 16:40, 40:52] = 3
    return heart


def measure(device: torch.device, repeats: int) -> list[BenchResult]:
    """Median generation time of one 20-frame sequence per width, the same heart moved."""
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.cheart.config import LEAN
    from cardio_explorer.engine.cheart.inference import decode_from_z
    from cardio_explorer.engine.cheart.network import parameter_count
    from cardio_explorer.engine.cheart.toy import random_model

    heart = _heart(device)
    results = []
    for name, encoder, decoder in WIDTHS:
        config = LEAN.with_changes(encoder_channels=encoder, decoder_channels=decoder)
        model = random_model(config, device=device)
        z = np.zeros((1, config.z_dim), dtype=np.float32)
        times = time_call(
            lambda m=model, z=z: decode_from_z(m, z, [m.stats.typical("F")], heart), repeats
        )
        million = parameter_count(model.net) / 1e6
        label = f"cheart width: {name}, {million:.2f} M parameters"
        results.append(summarise(label, device, times, TARGET_MS))
    return results
