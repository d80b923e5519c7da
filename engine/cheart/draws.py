"""The randomness of generated hearts, and what it becomes: frame-0 latents, prior components
and motion codes.

A draw holds standard normals and uniforms only; the model's fitted prior (engine/cheart/
prior.py) turns them into a component per heart, its frame-0 latent and, for a motion-code
model whose prior has a motion part, its motion code. The same seed gives the same hearts on
every device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from cardio_explorer.engine.cheart.model import CHeartModel
from cardio_explorer.engine.cheart.motion_code import N_DESCRIPTORS
from cardio_explorer.engine.subject import Conditions


def prior_samples(n: int, z_dim: int, seed: int | None) -> np.ndarray:
    """z ~ N(0, I) [n, z_dim], reproducible for a seed (the same on CPU and CUDA)."""
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return torch.randn(n, z_dim, generator=generator).numpy()


@dataclass(frozen=True)
class PriorDraw:
    """The randomness of ``n`` generated hearts: standard normals [n, z], uniforms [n] that
    pick the fitted prior's mixture component (unused without a fitted prior), and standard
    normals [n, m] that draw a motion-code model's motion (m = 0 without one)."""

    noise: np.ndarray
    uniforms: np.ndarray
    motion: np.ndarray

    def __len__(self) -> int:
        return len(self.noise)

    def subset(self, start: int, stop: int) -> PriorDraw:
        """Draws ``start:stop``."""
        return PriorDraw(self.noise[start:stop], self.uniforms[start:stop], self.motion[start:stop])

    def repeated(self, times: int) -> PriorDraw:
        """Every draw ``times`` times in a row (a sweep keeps one individual)."""
        return PriorDraw(
            *(np.repeat(x, times, axis=0) for x in (self.noise, self.uniforms, self.motion))
        )


def prior_draw(model: CHeartModel, n: int, seed: int | None) -> PriorDraw:
    """``n`` draws, reproducible for a seed (the motion normals from a stream of their own,
    so a model without a motion code draws the hearts it drew before)."""
    noise = prior_samples(n, model.config.z_dim, seed)
    rng = np.random.default_rng(None if seed is None else [int(seed), 1])
    motion_rng = np.random.default_rng(None if seed is None else [int(seed), 2])
    width = N_DESCRIPTORS if model.config.motion_code else 0
    motion = motion_rng.standard_normal((n, width)).astype(np.float32)
    return PriorDraw(noise, rng.random(n), motion)


def frame0_latents(
    model: CHeartModel,
    draw: PriorDraw,
    conditions: Sequence[Conditions],
    components: np.ndarray | None = None,
) -> np.ndarray:
    """Frame-0 latents [n, z] of draws at conditions (one per draw): the model's fitted prior
    p(z0 | c) when it has one (engine/cheart/prior.py), else z = the normals (N(0, I)).

    ``components``: mixture components to use (a sweep keeps an individual's); None picks them
    from the draws' uniforms at these conditions.
    """
    picked = drawn_components(model, draw, conditions, components)
    if model.prior is None or picked is None:
        return draw.noise
    return model.prior.sample(draw.noise, model.stats.matrix(conditions), picked)


def drawn_components(
    model: CHeartModel,
    draw: PriorDraw,
    conditions: Sequence[Conditions],
    components: np.ndarray | None = None,
) -> np.ndarray | None:
    """The prior components [n] of draws: ``components`` when given, else picked by the draws'
    uniforms from p(g | c) at the conditions; None without a fitted prior."""
    if model.prior is None:
        return None
    if components is not None:
        return np.asarray(components, dtype=np.int64)
    return model.prior.choose(draw.uniforms, model.stats.matrix(conditions))


def group_motion_codes(
    model: CHeartModel,
    draw: PriorDraw,
    conditions: Sequence[Conditions],
    components: np.ndarray | None = None,
) -> np.ndarray | None:
    """Motion codes [n, 2] of draws from their components' motion prior p(m | c, g), or None
    where the model's prior has no motion part (the network's p(m | z0, c) then draws m from
    the draws' motion normals)."""
    if model.prior is None or model.prior.motion is None or not model.config.motion_code:
        return None
    picked = drawn_components(model, draw, conditions, components)
    return model.prior.motion_codes(draw.motion, model.stats.matrix(conditions), picked)


class DrawnHearts(NamedTuple):
    """What draws become at conditions: their prior components [n] (None without a fitted
    prior), frame-0 latents [n, z] and motion codes [n, 2] (None: the network's own prior
    p(m | z0, c) draws the motion from the draws' motion normals)."""

    components: np.ndarray | None
    z0: np.ndarray
    motion_codes: np.ndarray | None


def drawn_hearts(
    model: CHeartModel,
    draw: PriorDraw,
    conditions: Sequence[Conditions],
    components: np.ndarray | None = None,
) -> DrawnHearts:
    """Components, frame-0 latents and motion codes of draws at conditions (one per draw), the
    components picked once for both (``components`` as in :func:`frame0_latents`)."""
    picked = drawn_components(model, draw, conditions, components)
    z0 = frame0_latents(model, draw, conditions, picked)
    return DrawnHearts(picked, z0, group_motion_codes(model, draw, conditions, picked))
