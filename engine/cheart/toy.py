"""Toy beating hearts: nested ellipsoids whose size follows the conditions, for tests, demos and
benchmarks that must run without a cohort on disk. Not physiology: use engine/cohort for that.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cardio_explorer.engine.cheart.conditions import ConditionStats
from cardio_explorer.engine.cheart.config import TINY, CHeartConfig
from cardio_explorer.engine.cheart.model import CHeartModel, prepare_for_inference
from cardio_explorer.engine.cheart.network import CHeartNet
from cardio_explorer.engine.subject import Conditions, Subject
from cardio_explorer.engine.volume import LabelVolume


def toy_conditions(rng: np.random.Generator) -> Conditions:
    """Random plausible adult conditions."""
    male = bool(rng.random() < 0.5)
    height = rng.normal(177 if male else 164, 6)
    return Conditions(
        age=float(rng.integers(20, 81)),
        sex="M" if male else "F",
        height=float(height),
        weight=float(max(45.0, rng.normal(0.45 * height - 2, 8))),
        sbp=float(rng.normal(125, 12)),
    )


def toy_sequence(
    conditions: Conditions,
    grid: Sequence[int],
    spacing_zyx: Sequence[float],
    n_frames: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """uint8 labels [T, D, H, W]: LV cavity in a myocardial shell, RV beside; ED at frame 0.

    Cavity radius grows with male sex and shrinks with age; the wall thickens with age; the
    cavity contracts to about 60 % volume at ~35 % of the cycle (wall volume roughly kept).
    """
    shape = np.asarray(grid)
    spacing = np.asarray(spacing_zyx, dtype=np.float64)
    extent = shape * spacing
    scale = float(min(extent)) / 4.0  # mm: cavity radius of a typical heart
    radius = scale * (1.0 + 0.12 * conditions.is_male - 0.004 * (conditions.age - 50))
    radius *= float(rng.normal(1.0, 0.04))
    wall = 0.35 * scale * (1.0 + 0.005 * (conditions.age - 50))
    centre = extent / 2.0 + rng.normal(0, 0.03, 3) * extent
    coords = np.stack(
        np.meshgrid(
            *[(np.arange(n) + 0.5) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"
        )
    )
    offset = coords - centre[:, None, None, None]
    frames = np.zeros((n_frames, *shape), dtype=np.uint8)
    for t in range(n_frames):
        phase = t / n_frames
        if phase <= 0.35:  # systole: ED (frame 0) to ES at ~35 % of the cycle
            squeeze = np.sin(np.pi / 2 * phase / 0.35) ** 2
        else:  # filling back towards the next ED
            squeeze = np.cos(np.pi / 2 * (phase - 0.35) / 0.65) ** 2
        contraction = 1.0 - 0.16 * squeeze
        r_cavity = radius * contraction
        r_outer = (r_cavity**3 + ((radius + wall) ** 3 - radius**3)) ** (1 / 3)
        stretch = np.array([1.3, 1.0, 1.0])  # long axis along z
        dist = np.sqrt(np.sum((offset / stretch[:, None, None, None]) ** 2, axis=0))
        frame = frames[t]
        frame[dist < r_outer] = 2
        frame[dist < r_cavity] = 1
        rv_offset = offset.copy()
        rv_offset[2] += 1.6 * (radius + wall)
        rv_dist = np.sqrt(
            np.sum((rv_offset / np.array([1.2, 1.0, 0.6])[:, None, None, None]) ** 2, axis=0)
        )
        frame[(rv_dist < 1.1 * r_cavity) & (frame == 0)] = 3
    return frames


def toy_subjects(
    n: int,
    grid: Sequence[int] = (16, 16, 16),
    spacing_zyx: Sequence[float] = (6.0, 6.0, 6.0),
    n_frames: int = 20,
    seed: int = 0,
) -> list[Subject]:
    """``n`` toy subjects with all frames as 3D LabelVolumes (ED frame 0, ES near 35 %)."""
    rng = np.random.default_rng(seed)
    subjects = []
    for i in range(n):
        conditions = toy_conditions(rng)
        frames = toy_sequence(conditions, grid, spacing_zyx, n_frames, rng)
        origin = tuple(float(v) for v in rng.normal(0, 10, 3))
        labels = {
            t: LabelVolume.from_array(frames[t], spacing_zyx, origin, name=f"toy{i:03d}")
            for t in range(n_frames)
        }
        subjects.append(
            Subject(
                subject_id=f"toy{i:03d}",
                group="NOR",
                conditions=conditions,
                ed_frame=0,
                es_frame=round(0.35 * n_frames),
                n_frames=n_frames,
                labels=labels,
            )
        )
    return subjects


def random_model(
    config: CHeartConfig = TINY, seed: int = 0, device: torch.device | None = None
) -> CHeartModel:
    """An untrained model (random weights; condition statistics of 50 toy subjects)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    stats = ConditionStats.from_conditions([toy_conditions(rng) for _ in range(50)])
    device = device or torch.device("cpu")
    net = prepare_for_inference(CHeartNet(config), device)
    return CHeartModel(net=net, stats=stats, device=device)
