"""Bench: decode one 32-slice stack with the label VAE (bundled model; paper configuration)."""

from __future__ import annotations

import numpy as np
import torch

from cardio_explorer import resources
from cardio_explorer.app.commands.bench import BenchResult, summarise, time_call
from cardio_explorer.engine.label_vae.atlas import ATLAS_SLICES
from cardio_explorer.engine.label_vae.morph import decode_codes
from cardio_explorer.engine.label_vae.network import build_label_vae, load_label_vae

# Targets on 2 CPU cores at the default precision (bf16 where the CPU has bf16 units).
LEAN_CPU_TARGET_MS = 12.0
PAPER_CPU_TARGET_MS = 300.0
PAPER_CUDA_TARGET_MS = 2.0
PAPER_CPU_REFERENCE_MS = 3824.0
# The paper network takes seconds per stack on 2 cores: a few calls are enough there.
PAPER_CPU_REPEATS = 3


def _bundled_model(device: torch.device) -> tuple[torch.nn.Module, str]:
    path = resources.bundled_checkpoint("label_vae")
    if path.is_file():
        model, _ = load_label_vae(path, device)
        return model, "bundled"
    torch.manual_seed(0)
    return build_label_vae("lean").to(device).eval(), "lean, random weights: no bundled model"


def _decode_timer(
    model: torch.nn.Module, device: torch.device, repeats: int, warmup: int = 3
) -> list[float]:
    codes = np.random.default_rng(0).standard_normal((ATLAS_SLICES, model.config.nz))
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    return time_call(lambda: decode_codes(model, codes, device), repeats, warmup, sync)


def measure(device: torch.device, repeats: int) -> list[BenchResult]:
    """Median decode time of a 32-slice stack (argmax labels back on the host)."""
    results = []
    model, what = _bundled_model(device)
    fast = model.for_inference()
    target = LEAN_CPU_TARGET_MS if device.type == "cpu" else None
    results.append(
        summarise(
            f"label VAE ({what}): decode 32 slices",
            device,
            _decode_timer(fast, device, repeats),
            target,
        )
    )
    torch.manual_seed(0)
    paper = build_label_vae("paper").to(device).eval().for_inference()
    if device.type == "cuda":
        results.append(
            summarise(
                "label VAE paper (random weights): decode 32 slices",
                device,
                _decode_timer(paper, device, repeats),
                PAPER_CUDA_TARGET_MS,
            )
        )
    else:
        times = _decode_timer(paper, device, min(repeats, PAPER_CPU_REPEATS), warmup=1)
        results.append(
            summarise(
                f"label VAE paper (random; ref {PAPER_CPU_REFERENCE_MS:,.0f} ms): decode 32 slices",
                device,
                times,
                PAPER_CPU_TARGET_MS,
            )
        )
    return results
