"""How far this heart contracts, as an input of CHeart's motion: the motion code.

Without it CHeart's motion is a deterministic function of the ED frame's latent z0 and the
conditions, yet the ED shape does not fix the contraction (a ridge regression from z0 explains
59 % of the ejection fraction's variance, README issue 19). Trained by likelihood, a
deterministic motion must then average over the hearts that share an ED shape: it contracts
timidly (completed LVEF follows the true one with slope 0.40) and every generated heart beats
alike (generated LVEF SD 9.5 against 20.5 in the cohort).

The code m holds two measured numbers of a sequence: log(ESV / EDV) of the LV (at its smallest)
and of the RV, standardised. Training feeds each sequence its own m (so the decoder learns to
contract by as much as it is told), and a prior network learns p(m | z0, conditions), a Gaussian
fitted by likelihood (its gradient stops at z0 and the condition code: it only predicts).
Generation samples m from the prior; completion takes the prior's mean. A learned posterior
over the volume curves was tried first: it started uninformative, the zero-initialised layer
reading it learned nothing consistent, and the code collapsed onto its prior (README).

m shifts the LSTM's initial state, offsets every later frame's latent and scales each later
frame's displacement field (a gain per frame). All three layers start at zero (gain 1): a
warm-started model starts where it was.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from cardio_explorer.engine.labels import Label

N_DESCRIPTORS = 2  # LV and RV log(ESV / EDV)
# Standardisation of log(ESV / EDV): the training cohort's spread (LV -0.70 +- 0.37, RV -0.69 +-
# 0.34 over 200 hearts); fixed so that a checkpoint means the same code whatever trained it.
_LOG_RATIO_MEAN, _LOG_RATIO_SD = -0.7, 0.35
# Keeps the ratio finite for a structure absent from frame 0 (one voxel ~ 25 uL).
_VOXELS_FLOOR = 1.0
# A fine-tune's learning rate (5e-4) moves a weight about that much per Adam step: at that rate
# the zero-initialised shift layer was still near zero after an epoch (README, issue 19), so the
# motion code's layers learn this much faster (the optimizer's ``lr_scale``).
LR_SCALE = 20.0
_LOGVAR_RANGE = (-8.0, 4.0)


def voxel_counts(labels: torch.Tensor, structures: tuple[int, ...]) -> torch.Tensor:
    """Integer labels [B, T, D, H, W] -> voxels of each structure in each frame, float
    [B, T, len(structures)]."""
    return torch.stack([(labels == k).flatten(2).sum(dim=2) for k in structures], dim=2).float()


def motion_descriptors(labels: torch.Tensor) -> torch.Tensor:
    """Integer labels [B, T, D, H, W] -> standardised [LV, RV] log(smallest / frame-0 volume),
    [B, 2]."""
    volumes = voxel_counts(labels, (Label.LV, Label.RV))
    smallest = volumes.min(dim=1).values
    ratio = torch.log((smallest + _VOXELS_FLOOR) / (volumes[:, 0] + _VOXELS_FLOOR))
    return (ratio - _LOG_RATIO_MEAN) / _LOG_RATIO_SD


def sequence_motion_codes(labels: np.ndarray, chunk: int = 16) -> np.ndarray:
    """Motion codes [N, 2] of integer label sequences [N, T, D, H, W] (numpy), a chunk at a
    time (the whole set as one tensor would hold a byte per voxel of every frame again)."""
    codes = [
        motion_descriptors(torch.from_numpy(np.ascontiguousarray(labels[i : i + chunk])))
        for i in range(0, len(labels), chunk)
    ]
    return torch.cat(codes).numpy()


def ejection_fractions(code: torch.Tensor) -> torch.Tensor:
    """Standardised codes [B, 2] -> the [LV, RV] ejection fractions (%) they stand for."""
    return 100.0 * (1.0 - torch.exp(code.float() * _LOG_RATIO_SD + _LOG_RATIO_MEAN))


def gaussian_nll(value: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """-log N(value; mu, exp(logvar)) without the constant, summed over dimensions, averaged
    over the batch."""
    value, mu, logvar = value.float(), mu.float(), logvar.float()
    return (0.5 * (logvar + (value - mu).pow(2) / logvar.exp())).sum(dim=1).mean()


def parameter_groups(net: nn.Module) -> list[dict[str, Any]]:
    """Optimizer groups: the motion code's parameters at ``LR_SCALE`` times the rest's rate."""
    code = [p for name, p in net.named_parameters() if name.startswith("motion_code.")]
    rest = [p for name, p in net.named_parameters() if not name.startswith("motion_code.")]
    groups: list[dict[str, Any]] = [{"params": rest, "lr_scale": 1.0}]
    if code:
        groups.append({"params": code, "lr_scale": LR_SCALE})
    return groups


def _per_later_frame(values: torch.Tensor, n_later: int) -> torch.Tensor:
    """Per-frame values [B, F, ...] cut or zero-padded to the first ``n_later`` frames."""
    values = values[:, :n_later]
    missing = n_later - values.shape[1]
    if missing > 0:
        pad = values.new_zeros(values.shape[0], missing, *values.shape[2:])
        values = torch.cat([values, pad], dim=1)
    return values


class MotionCode(nn.Module):
    """The prior p(m | z0, condition code) and what m does: a shift of the LSTM's initial state,
    an offset of every later latent and a gain on every later displacement field."""

    def __init__(self, z_dim: int, code: int, lstm_hidden: int, n_frames: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.prior = nn.Sequential(
            nn.Linear(z_dim + code, 64), nn.LeakyReLU(0.2), nn.Linear(64, 2 * N_DESCRIPTORS)
        )
        self.to_state = nn.Linear(N_DESCRIPTORS, 2 * lstm_hidden)
        nn.init.zeros_(self.to_state.weight)
        nn.init.zeros_(self.to_state.bias)
        # and a per-frame offset of every later latent: through the LSTM's state alone, m moved
        # the ejection fraction by 8 points over six standard deviations after an epoch
        self.to_latents = nn.Linear(N_DESCRIPTORS, (n_frames - 1) * z_dim)
        nn.init.zeros_(self.to_latents.weight)
        nn.init.zeros_(self.to_latents.bias)
        # and a per-frame gain on the displacement fields, the direct lever on how far the
        # walls move (both routes above together still moved the ejection fraction by only
        # 10 points over four standard deviations of m after an epoch)
        self.to_gain = nn.Linear(N_DESCRIPTORS, n_frames - 1)
        nn.init.zeros_(self.to_gain.weight)
        nn.init.zeros_(self.to_gain.bias)

    def prior_of(self, z0: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) [B, 2] of the motions that frame 0's latent and the conditions allow."""
        mu, logvar = self.prior(torch.cat([z0, code], dim=1).float()).chunk(2, dim=1)
        return mu, logvar.clamp(*_LOGVAR_RANGE)

    def state_shift(self, m: torch.Tensor) -> torch.Tensor:
        """m [B, 2] -> the shift added to the LSTM's initial (h, c) pre-activations."""
        return self.to_state(m)

    def displacement_gains(self, m: torch.Tensor, n_later: int) -> torch.Tensor:
        """m [B, 2] -> positive gains [B, n_later] on the later frames' displacements (1 past
        the trained cycle)."""
        log_gain = _per_later_frame(self.to_gain(m.float()), n_later)
        return torch.exp(log_gain.clamp(-3.0, 3.0))

    def latent_offsets(self, m: torch.Tensor, n_later: int) -> torch.Tensor:
        """m [B, 2] -> offsets [B, n_later, z] of the later frames' latents (frames past the
        trained cycle get none)."""
        return _per_later_frame(self.to_latents(m).view(len(m), -1, self.z_dim), n_later)
