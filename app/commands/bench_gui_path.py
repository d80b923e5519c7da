"""Bench: the slider-to-surface path without the GUI (alpha -> decode -> surfaces -> read-outs).

What one alpha-slider move costs the worker thread: the morph decoded at ED and ES, the shown
phase's surfaces extracted, and the phenotypes measured; the same job the window runs.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from cardio_explorer.app.commands.bench import BenchResult, summarise, time_call
from cardio_explorer.engine.subject import PATHOLOGY_GROUPS

CPU_TARGET_MS = 25.0
_ALPHAS = np.linspace(0.05, 0.95, 19)


def _engines(device: torch.device):
    """The bundled label VAE, or None when it is not trained yet."""
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer import resources
    from cardio_explorer.app.jobs.models import Engines, load_slot

    path = resources.bundled_checkpoint("label_vae")
    if not path.is_file():
        return None
    return Engines(device).with_slot(load_slot("label_vae", path, device))


def synthetic_heart(shape=(32, 128, 128), spacing=(3.0, 1.5, 1.5), scale: float = 1.0):
    """A heart-sized label volume (LV in a myocardial shell, RV beside) on the morph grid."""
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.volume import LabelVolume

    z, y, x = (np.arange(n) * s for n, s in zip(shape, spacing, strict=True))
    zz, yy, xx = np.meshgrid(z - z.mean(), y - y.mean(), x - x.mean() + 15, indexing="ij")
    lv = (xx / (22 * scale)) ** 2 + (yy / (22 * scale)) ** 2 + (zz / 45) ** 2
    rv = ((xx - 40) / 18) ** 2 + (yy / 28) ** 2 + (zz / 40) ** 2
    data = np.zeros(shape, np.uint8)
    data[rv < 1] = 3
    data[lv < 1.6] = 2
    data[lv < 1] = 1
    return LabelVolume.from_array(data, spacing)


def _fallback(device: torch.device, repeats: int) -> list[BenchResult]:
    """No bundled model: a lean label VAE with random weights decodes (the same cost), and the
    surfaces and phenotypes are measured on a synthetic heart of the same size."""
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.app.jobs.morph import readout_phenotypes
    from cardio_explorer.engine.label_vae.atlas import ATLAS_SLICES
    from cardio_explorer.engine.label_vae.morph import decode_codes
    from cardio_explorer.engine.label_vae.network import build_label_vae
    from cardio_explorer.viewer.surfaces import extract_surfaces  # VTK: see measure()

    torch.manual_seed(0)
    model = build_label_vae("lean").to(device).eval().for_inference()
    codes = np.random.default_rng(0).standard_normal((ATLAS_SLICES, model.config.nz))
    ed, es = synthetic_heart(), synthetic_heart(scale=0.8)

    def to_surfaces() -> None:
        decode_codes(model, codes, device)
        extract_surfaces(ed)

    def to_readouts() -> None:
        to_surfaces()
        decode_codes(model, codes, device)
        readout_phenotypes(ed, es)

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    what = "(lean random weights + synthetic heart: no bundled model)"
    target_ms = CPU_TARGET_MS if device.type == "cpu" else None
    return [
        summarise(
            f"GUI path {what}: alpha -> decode -> surfaces",
            device,
            time_call(to_surfaces, repeats, warmup=2, sync=sync),
            target_ms,
        ),
        summarise(
            "GUI path ... + other phase -> read-outs",
            device,
            time_call(to_readouts, repeats, warmup=1, sync=sync),
        ),
    ]


def measure(device: torch.device, repeats: int) -> list[BenchResult]:
    """Medians of the morph job over alphas that change at every call (no cache can help):
    to the updated surfaces (what the 3D view waits for), and to the read-outs."""
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.app.jobs.morph import MorphRequest, run_morph
    from cardio_explorer.app.jobs.query import MorphQuery

    # the window meshes with VTK through viewer: the one import of viewer from app/commands,
    # allowed by name in pyproject.toml's import-linter contract
    from cardio_explorer.viewer.surfaces import extract_meshes

    engines = _engines(device)
    if engines is None:
        return _fallback(device, repeats)
    morph = engines.morph
    subject = morph.atlas.reference_ids[0]
    target = next(g for g in PATHOLOGY_GROUPS if g in morph.atlas.groups)
    calls = iter(range(10**9))
    to_surfaces: list[float] = []

    def slider_move() -> None:
        alpha = float(_ALPHAS[next(calls) % len(_ALPHAS)])
        request = MorphRequest(0, engines, MorphQuery(subject, target, "ED", alpha, True, 0))
        start = time.perf_counter()
        job = run_morph(request, lambda _request: True, extract_meshes)
        next(job)  # the Partial: shown phase decoded, surfaces extracted
        to_surfaces.append((time.perf_counter() - start) * 1000.0)
        for _ in job:  # the other phase and the read-outs
            pass

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    total = time_call(slider_move, repeats, warmup=3, sync=sync)
    target_ms = CPU_TARGET_MS if device.type == "cpu" else None
    return [
        summarise("GUI path: alpha -> decode -> surfaces", device, to_surfaces[3:], target_ms),
        summarise("GUI path: ... + other phase -> read-outs", device, total),
    ]
