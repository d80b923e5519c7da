"""Completion that ejects what the motion code says: each heart's displacement gains scaled until
its LV ejection fraction is the one the code's prior predicts for it.

A motion-code model reads a given ED frame well (on the ACDC training split its prior's mean
says LVEF 46.9 % against the real 46.6 %), but its displacement fields, learned on synthetic
anatomy, move real walls too little: completed with their own true code, real hearts reached
29.9 %. The code says how far the heart contracts and the fields say where; a per-heart scale
on the gains, found by bisection, makes the moved LV eject what the code says (README, issue
19). Generation keeps the gains as they are (its frame 0 is the model's own anatomy, and its
100 ms budget has no room for the extra decodes).
"""

from __future__ import annotations

import torch

from cardio_explorer.engine.cheart.motion_code import ejection_fractions, voxel_counts
from cardio_explorer.engine.labels import Label

SCALE_RANGE = (0.5, 4.0)
# Each step halves the scale's interval: 7 steps resolve it to 0.03, about 0.5 LVEF points.
STEPS = 7


def lv_ejection_fractions(labels: torch.Tensor) -> torch.Tensor:
    """Integer labels [B, T, D, H, W] -> LV ejection fraction (%) [B]: smallest volume
    against frame 0's."""
    volumes = voxel_counts(labels, (Label.LV,))[..., 0]
    return 100.0 * (1.0 - volumes.min(dim=1).values / volumes[:, 0].clamp_min(1.0))


def calibrated_completion(
    net: torch.nn.Module, z0: torch.Tensor, conditions: torch.Tensor, source: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 labels [B, T, D, H, W], latents [B, T, z]) of the given ED frames ``source``
    [B, D, H, W] completed with the motion code's prior mean, each heart's gains scaled so that
    its LV ejects what that code says (the closest of the scales tried)."""
    motion, _ = net.motion_of(z0.float(), conditions.float())
    wanted = ejection_fractions(motion)[:, 0]
    low = torch.full_like(wanted, SCALE_RANGE[0])
    high = torch.full_like(wanted, SCALE_RANGE[1])
    scale = torch.ones_like(wanted)
    best_labels = best_error = latents = None
    for _ in range(STEPS + 1):
        out = net.generate(z0, conditions, source=source, gain_scale=scale)
        labels = out.labels()
        ejected = lv_ejection_fractions(labels)
        error = (ejected - wanted).abs()
        if best_labels is None:
            best_labels, best_error, latents = labels, error, out.latents
        else:
            better = error < best_error
            best_labels = torch.where(better[:, None, None, None, None], labels, best_labels)
            best_error = torch.minimum(error, best_error)
        too_little = ejected < wanted
        low = torch.where(too_little, scale, low)
        high = torch.where(too_little, high, scale)
        scale = (low + high) / 2
    return best_labels, latents
