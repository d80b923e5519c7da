"""SPADE loss terms: hinge, feature matching, KL, and the download-free reconstruction term."""

from __future__ import annotations

import pytest
import torch

from cardio_explorer.engine.spade.losses import (
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
    kl_loss,
    reconstruction_loss,
)


def _scales(*logit_values: float, feature: float = 0.0):
    return [[torch.full((1, 2, 3, 3), feature), torch.full((1, 1, 2, 2), v)] for v in logit_values]


def test_hinge_losses():
    # confident and right: no discriminator loss; margins count linearly beyond them
    assert hinge_d_loss(_scales(1.0, 2.0), _scales(-1.0, -3.0)).item() == pytest.approx(0.0)
    assert hinge_d_loss(_scales(0.0), _scales(0.0)).item() == pytest.approx(2.0)
    assert hinge_d_loss(_scales(0.5, 0.5), _scales(0.0, 0.0)).item() == pytest.approx(1.5)
    assert hinge_g_loss(_scales(2.0, 4.0)).item() == pytest.approx(-3.0)


def test_feature_matching_ignores_logits_and_detaches_real():
    real = _scales(5.0, 5.0, feature=1.0)
    fake = _scales(-5.0, -5.0, feature=0.5)
    assert feature_matching_loss(real, real).item() == 0.0
    assert feature_matching_loss(real, fake).item() == pytest.approx(0.5)
    real[0][0].requires_grad_(True)
    fake[0][0].requires_grad_(True)
    feature_matching_loss(real, fake).backward()
    assert real[0][0].grad is None
    assert fake[0][0].grad is not None


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(4, 8)
    assert kl_loss(zeros, zeros).item() == 0.0
    assert kl_loss(torch.ones(4, 8), zeros).item() == pytest.approx(4.0)  # 0.5 * 8 * 1
    assert kl_loss(zeros, torch.full((4, 8), 1.0)).item() > 0


def test_reconstruction_term_sees_intensity_and_edges():
    real = torch.full((1, 1, 16, 16), -1.0)
    real[..., 4:12, 4:12] = 1.0
    assert reconstruction_loss(real, real).item() == 0.0
    brighter = real + 0.2
    shifted = torch.roll(real, 1, dims=-1)
    # a global offset moves every scale but no gradient; an edge shift moves the gradients
    offset_loss = reconstruction_loss(brighter, real, gradient_weight=0.0)
    assert offset_loss.item() == pytest.approx(0.2)
    assert reconstruction_loss(brighter, real).item() == pytest.approx(0.2)
    assert (
        reconstruction_loss(shifted, real).item()
        > reconstruction_loss(shifted, real, gradient_weight=0.0).item()
    )
