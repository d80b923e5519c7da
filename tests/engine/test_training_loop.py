"""Training-loop guards: gradient spikes are clipped relative to the recent norm."""

from __future__ import annotations

import math

import torch
from tiny_models import SIZE, TINY

from cardio_explorer.engine.label_vae.network import LOGVAR_MAX, LOGVAR_MIN, LabelVAE
from cardio_explorer.engine.nn.training import AdaptiveGradClip


def _param_with_grad(value: float) -> torch.nn.Parameter:
    param = torch.nn.Parameter(torch.zeros(4))
    param.grad = torch.full((4,), value)
    return param


def test_spike_is_clipped_to_a_multiple_of_the_running_norm():
    clip = AdaptiveGradClip(factor=3.0)
    for _ in range(20):
        clip([_param_with_grad(1.0)])  # norm 2
    spike = _param_with_grad(1000.0)
    before = clip([spike])
    assert math.isclose(before, 2000.0, rel_tol=1e-5)
    assert float(spike.grad.norm()) <= 3.0 * 2.0 * 1.01


def test_first_step_is_not_clipped_and_nonfinite_norm_is_reported():
    clip = AdaptiveGradClip()
    first = _param_with_grad(5.0)
    clip([first])
    assert torch.allclose(first.grad, torch.full((4,), 5.0))
    assert not math.isfinite(clip([_param_with_grad(float("nan"))]))
    assert clip.mean_norm is not None
    assert math.isfinite(clip.mean_norm)


def test_logvar_is_bounded_so_kl_cannot_overflow():
    model = LabelVAE(TINY)
    with torch.no_grad():
        model.to_logvar.bias.fill_(1e4)  # what a diverging run drives it towards
        onehot = torch.nn.functional.one_hot(torch.zeros(2, SIZE, SIZE, dtype=torch.long), 4)
        _, logvar = model.encode(onehot.permute(0, 3, 1, 2).float())
    assert float(logvar.max()) <= LOGVAR_MAX
    assert float(logvar.min()) >= LOGVAR_MIN
