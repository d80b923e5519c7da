"""CHeart's training loss: likelihood of the frames, KL of z0 (and of the motion code), and the
optional motion terms."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional

from cardio_explorer.engine.cheart.motion import smoothness
from cardio_explorer.engine.cheart.network import CHeartOutput


class CHeartLoss(NamedTuple):
    """total = cross_entropy + beta * kl (+ motion_smoothness * smoothness and motion_dice *
    (1 - soft Dice) with motion)."""

    total: torch.Tensor
    cross_entropy: torch.Tensor
    kl: torch.Tensor


def cheart_loss(
    output: CHeartOutput,
    target: torch.Tensor,
    beta: float,
    motion_smoothness: float = 0.0,
    motion_dice: float = 0.0,
    motion_code_beta: float = 0.0,
) -> CHeartLoss:
    """Cross-entropy averaged over every voxel of every frame + beta x KL (summed over z,
    averaged over the batch; ``kl`` reports it) + motion_code_beta x the motion-code prior's
    NLL when there is one (the prior's own parameters read only this term); target holds
    integer labels [B, T, D, H, W].

    With motion the term is the cross-entropy of the decoded frame 0 (what generation starts
    from) plus the mean negative log-likelihood of the later frames as the warped given frame 0.
    The two are summed, not averaged over frames: frame 0 alone now carries the heart's shape,
    and weighting it 1/T would let beta x KL squeeze that shape out of z0."""
    target = target.long()
    if output.moved is None:
        b, t, c = output.logits.shape[:3]
        logits = output.logits.reshape(b * t, c, *output.logits.shape[3:]).float()
        ce = functional.cross_entropy(logits, target.reshape(b * t, *target.shape[2:]))
    else:
        first = functional.cross_entropy(output.frame0_logits.float(), target[:, 0])
        ce = first + output.moved.nll(target[:, 1:])
    mu, logvar = output.mu.float(), output.logvar.float()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
    total = ce + beta * kl
    if output.motion_nll is not None:
        total = total + motion_code_beta * output.motion_nll
    if output.displacement is not None and motion_smoothness > 0:
        total = total + motion_smoothness * smoothness(output.displacement)
    if output.moved is not None and motion_dice > 0:
        total = total + motion_dice * (1.0 - output.moved.soft_dice(target[:, 1:]).mean())
    return CHeartLoss(total, ce, kl)
