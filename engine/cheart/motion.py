"""Motion decoding for CHeart: later frames are frame 0 warped by decoded displacement fields.

Frame 0's foreground probabilities are resampled (trilinear) at x + displacement(x) inside the
box around its labelled voxels, grown by ``MOTION_MARGIN``; outside that box every later frame is
background. The moved frames are kept per box (``MovedFrames``): their labels and their
negative log-likelihood are computed there, so neither training nor generation builds full-grid
probability volumes for 19 frames.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

# Voxels per unit of the decoder's displacement channels: a heart wall moves a few voxels on the
# lean grid, and early optimiser steps then move boundaries by fractions of a voxel.
DISPLACEMENT_VOXELS = 2.0
_LOG_FLOOR = 1e-6
_BACKGROUND, _LV, _MYO, _RV = 0, 1, 2, 3  # engine.labels.Label, as plain ints for torch


# Motion is confined to this many voxels around frame 0's labelled box: outside it every later
# frame is background. Wide enough for the largest systolic excursion on the lean grid (the base
# descends about 15 mm, under 4 slices of 4 mm), and it keeps the resampling off the empty field.
MOTION_MARGIN = 4


def warp_labels(source: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Values [N, C, D, H, W] resampled at x + displacement [N, 3, D, H, W] (voxels, array
    order z, y, x); trilinear, borders repeated."""
    _n, _c, d, h, w = source.shape
    sizes = torch.tensor([d, h, w], dtype=torch.float32, device=displacement.device)
    identity = [torch.linspace(-1 + 1 / s, 1 - 1 / s, s, device=source.device) for s in (d, h, w)]
    base = torch.stack(torch.meshgrid(*identity, indexing="ij"), dim=-1)  # [D, H, W, 3] z,y,x
    offset = displacement.float().permute(0, 2, 3, 4, 1) * (2.0 / sizes)  # voxels -> normalised
    grid = (base + offset).flip(-1)  # grid_sample reads (x, y, z)
    return functional.grid_sample(
        source.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def labelled_box(first: torch.Tensor, margin: int = MOTION_MARGIN) -> tuple[slice, ...] | None:
    """(z, y, x) slices of the box around the labelled voxels of probabilities [C, D, H, W]
    (channel 0 background), grown by ``margin`` and clipped to the grid; None when empty."""
    labelled = first[1:].sum(dim=0) > 0.5
    if not bool(labelled.any()):
        return None
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hits = torch.nonzero(labelled.any(dim=others)).flatten()
        low = max(int(hits[0]) - margin, 0)
        high = min(int(hits[-1]) + margin + 1, labelled.shape[axis])
        box.append(slice(low, high))
    return tuple(box)


class MovedFrames(NamedTuple):
    """Frames after frame 0 of a motion model, held where they can differ from background: per
    heart its box (see ``labelled_box``, None when frame 0 is empty) and the moved foreground
    probabilities inside it [T', C - 1, *box]; outside the box every frame is background."""

    boxes: list[tuple[slice, ...] | None]
    foreground: list[torch.Tensor | None]
    grid: tuple[int, int, int]
    n_labels: int
    n_frames: int
    device: torch.device

    def probabilities(self) -> torch.Tensor:
        """Full-grid probabilities [B, T', C, D, H, W] (background = 1 - foreground)."""
        out = []
        for box, moved in zip(self.boxes, self.foreground, strict=True):
            frames = self._background()
            if box is not None:
                inside = frames[(slice(None), slice(None), *box)]
                inside[:, 1:] = moved
                inside[:, 0] = 1.0 - moved.sum(dim=1)
            out.append(frames)
        return torch.stack(out)

    def labels(self) -> torch.Tensor:
        """Most probable label per voxel, uint8 [B, T', D, H, W]; computed inside the boxes,
        the LV blood pool closed by myocardium (``enclose_lv``)."""
        out = []
        for box, moved in zip(self.boxes, self.foreground, strict=True):
            frames = torch.zeros((self.n_frames, *self.grid), dtype=torch.uint8, device=self.device)
            if box is not None:
                best, index = moved.max(dim=1)
                # Ties go to background, as argmax over (background, foreground...) would.
                label = torch.where(best > 1.0 - moved.sum(dim=1), index + 1, 0)
                frames[(slice(None), *box)] = enclose_lv(label.to(torch.uint8))
            out.append(frames)
        return torch.stack(out)

    def nll(self, target: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of integer labels [B, T', D, H, W] over every voxel,
        probabilities floored at ``_LOG_FLOOR`` (a foreground voxel outside a box costs
        -log of it); built from the boxes alone, never the full grid."""
        total = target.new_zeros((), dtype=torch.float32)
        floor = -math.log(_LOG_FLOOR)
        for i, (box, moved) in enumerate(zip(self.boxes, self.foreground, strict=True)):
            labelled = (target[i] > 0).sum()
            if box is None:
                total = total + floor * labelled
                continue
            inside = target[i][(slice(None), *box)].long()
            probabilities = torch.cat([1.0 - moved.sum(dim=1, keepdim=True), moved], dim=1)
            chosen = probabilities.gather(1, inside[:, None]).clamp_min(_LOG_FLOOR)
            outside = labelled - (inside > 0).sum()
            total = total - chosen.log().sum() + floor * outside
        return total / target.numel()

    def soft_dice(self, target: torch.Tensor) -> torch.Tensor:
        """Soft Dice [B, T', C - 1] of each foreground label of integer labels [B, T', D, H, W]
        against the moved probabilities; built from the boxes (a label outside a box counts as
        missed)."""
        labels = torch.arange(1, self.n_labels, device=target.device)
        scores = []
        for i, (box, moved) in enumerate(zip(self.boxes, self.foreground, strict=True)):
            counts = (target[i][:, None] == labels[None, :, None, None, None]).sum(dim=(2, 3, 4))
            if box is None:
                scores.append(torch.zeros_like(counts, dtype=torch.float32))
                continue
            inside = target[i][(slice(None), *box)]
            truth = (inside[:, None] == labels[None, :, None, None, None]).float()
            overlap = (moved * truth).sum(dim=(2, 3, 4))
            total = moved.sum(dim=(2, 3, 4)) + counts.float()
            # A label absent from both counts as perfect (1), not as 0 / 0.
            scores.append((2.0 * overlap + 1.0) / (total + 1.0))
        return torch.stack(scores)

    def _background(self) -> torch.Tensor:
        frames = torch.zeros((self.n_frames, self.n_labels, *self.grid), device=self.device)
        frames[:, 0] = 1.0
        return frames


def enclose_lv(labels: torch.Tensor) -> torch.Tensor:
    """Labels [..., D, H, W] (internal values, base at slice 0) with every LV voxel that touches
    background or RV in-plane turned to myocardium, except in each volume's most basal LV slice
    (the open valve plane; see engine/metrics/topology.py).

    A warp moves the endocardium and epicardium separately, and where the wall gets thinner
    than a voxel the resampled cavity touches the background or the RV: blood through the wall,
    which a heart cannot show. One pass suffices: a remaining LV voxel touches LV or myocardium
    only. Integer label maps only (the likelihood in training is untouched)."""
    lv = labels == _LV
    open_side = (labels == _BACKGROUND) | (labels == _RV)
    padded = functional.pad(open_side.to(torch.uint8), (1, 1, 1, 1), value=1).bool()
    touches = (
        padded[..., :-2, 1:-1]
        | padded[..., 2:, 1:-1]
        | padded[..., 1:-1, :-2]
        | padded[..., 1:-1, 2:]
    )
    has_lv = lv.any(dim=-1).any(dim=-1)  # [..., D]
    basal = has_lv & (torch.cumsum(has_lv.to(torch.int32), dim=-1) == 1)
    exposed = lv & touches & ~basal[..., None, None]
    return torch.where(exposed, torch.full_like(labels, _MYO), labels)


def move_first_frame(first: torch.Tensor, displacement: torch.Tensor) -> MovedFrames:
    """Frame-0 probabilities [B, C, D, H, W] moved by displacements [B, T, 3, D, H, W]; see
    ``MOTION_MARGIN``. Foreground channels are resampled inside each heart's own box (so a heart
    never depends on its batch neighbours); nothing is built outside the boxes."""
    t = displacement.shape[1]
    boxes, foreground = [], []
    for i in range(first.shape[0]):
        box = labelled_box(first[i])
        boxes.append(box)
        if box is None:
            foreground.append(None)
            continue
        inside = first[i, 1:][(slice(None), *box)].float()
        foreground.append(
            warp_labels(
                inside[None].expand(t, *inside.shape),
                displacement[i][(slice(None), slice(None), *box)],
            )
        )
    return MovedFrames(boxes, foreground, tuple(first.shape[2:]), first.shape[1], t, first.device)


def smoothness(displacement: torch.Tensor) -> torch.Tensor:
    """Mean squared forward difference of displacements [..., 3, D, H, W] along z, y and x."""
    d = displacement.float()
    return (
        (d[..., 1:, :, :] - d[..., :-1, :, :]).pow(2).mean()
        + (d[..., :, 1:, :] - d[..., :, :-1, :]).pow(2).mean()
        + (d[..., :, :, 1:] - d[..., :, :, :-1]).pow(2).mean()
    )


class MotionBasis(nn.Module):
    """Displacement fields placed by the anatomy they move: a small CNN reads frame 0 (one-hot,
    pooled to half resolution) once per sequence and outputs ``k`` basis fields (3 channels
    each, voxels, full resolution); each frame mixes them with ``k`` amplitudes read from its
    decoder input (latent and condition code). The latent-only decoder head cannot see where
    frame 0's walls are, so the negative log-likelihood prefers timid, misplaced fields (see
    the README, issue 19); here the fields follow the walls and the latent sets how far they go.
    The output layer starts at zero, so a warm-started model starts where it was."""

    def __init__(self, n_labels: int, decoder_input: int, k: int, width: int = 16) -> None:
        super().__init__()
        self.k = k
        self.anatomy = nn.Sequential(
            nn.AvgPool3d(2),
            nn.Conv3d(n_labels, width, 3, padding=1),
            nn.LeakyReLU(0.2),
            # Dilations grow the field of view to about 15 half-resolution voxels, the LV's
            # radius and more, so a field can point from a wall towards the cavity's centre.
            nn.Conv3d(width, width, 3, padding=2, dilation=2),
            nn.LeakyReLU(0.2),
            nn.Conv3d(width, width, 3, padding=4, dilation=4),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose3d(width, 3 * k, kernel_size=4, stride=2, padding=1),
        )
        last = self.anatomy[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.amplitude = nn.Sequential(
            nn.Linear(decoder_input, 64), nn.LeakyReLU(0.2), nn.Linear(64, k)
        )

    def forward(self, first: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        """Frame-0 one-hot [B, C, D, H, W] and decoder inputs [B, T', z + code] ->
        displacements [B, T', 3, D, H, W] (in units of ``DISPLACEMENT_VOXELS``)."""
        b, _, d, h, w = first.shape
        basis = self.anatomy(first).float().reshape(b, self.k, 3 * d * h * w)
        amplitude = self.amplitude(decoder_input).float()  # [B, T', k]
        return torch.bmm(amplitude, basis).view(b, -1, 3, d, h, w)
