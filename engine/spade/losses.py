"""SPADE losses: hinge GAN, discriminator feature matching, KL, and a download-free perceptual term.

The paper's VGG perceptual term needs ImageNet weights that cannot be fetched here. In its slot
(weight 10) goes :func:`reconstruction_loss`: L1 between the generated and the real image at
full, 1/2, 1/4 and 1/8 resolution plus L1 between their finite-difference gradients. The coarse
scales pin each tissue's mean intensity (what the intensity target measures), the gradient term
pins edge position and contrast (what a segmenter reads, so what label fidelity measures); the
texture that VGG features also carry is left to discriminator feature matching, which is already
in the loss. Features of the trained discriminator were the other option, but they would only
repeat feature matching and shift as the discriminator learns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.nn import functional


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's loss terms (NVlabs SPADE defaults; KL 0.05 as there)."""

    gan: float = 1.0
    feature_matching: float = 10.0
    reconstruction: float = 10.0
    kl: float = 0.05

    def to_json(self) -> dict[str, Any]:
        """Plain dict for checkpoints."""
        return asdict(self)


def hinge_d_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Discriminator hinge loss, averaged over scales: relu(1 - D(real)) + relu(1 + D(fake))."""
    terms = [
        functional.relu(1.0 - r[-1]).mean() + functional.relu(1.0 + f[-1]).mean()
        for r, f in zip(real, fake, strict=True)
    ]
    return torch.stack(terms).mean()


def hinge_g_loss(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Generator hinge loss, averaged over scales: -D(fake)."""
    return torch.stack([-f[-1].mean() for f in fake]).mean()


def feature_matching_loss(
    real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]
) -> torch.Tensor:
    """L1 between the discriminator's intermediate features of real and fake, per scale.

    Summed over layers (the logit layer excluded), averaged over scales; real features are
    targets (detached).
    """
    per_scale = [
        sum(functional.l1_loss(f, r.detach()) for r, f in zip(rs[:-1], fs[:-1], strict=True))
        for rs, fs in zip(real, fake, strict=True)
    ]
    return torch.stack([torch.as_tensor(p) for p in per_scale]).mean()


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) summed over the style code, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def image_gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along y and x of (B, C, H, W) images."""
    return image[..., 1:, :] - image[..., :-1, :], image[..., :, 1:] - image[..., :, :-1]


def reconstruction_loss(
    fake: torch.Tensor, real: torch.Tensor, scales: int = 4, gradient_weight: float = 1.0
) -> torch.Tensor:
    """Multi-scale L1 (full, 1/2, ... resolution, averaged) + L1 of image gradients.

    fake, real: (B, 1, H, W) images in [-1, 1]. The download-free stand-in for VGG perceptual
    loss (see the module docstring).
    """
    terms = []
    f, r = fake, real
    for level in range(scales):
        if level:
            if min(f.shape[-2:]) < 2:
                break
            f, r = functional.avg_pool2d(f, 2), functional.avg_pool2d(r, 2)
        terms.append(functional.l1_loss(f, r))
    loss = torch.stack(terms).mean()
    if gradient_weight:
        (fy, fx), (ry, rx) = image_gradients(fake), image_gradients(real)
        edges = functional.l1_loss(fy, ry) + functional.l1_loss(fx, rx)
        loss = loss + gradient_weight * 0.5 * edges
    return loss
