"""Sequences that eject what the motion code says: each heart's displacement gains scaled until
its LV ejection fraction is the one its code stands for.

A motion-code model reads a given ED frame well (on the ACDC training split its prior's mean
says LVEF 46.9 % against the real 46.6 %), but its displacement fields, learned on synthetic
anatomy, move real walls too little: completed with their own true code, real hearts reached
29.9 %; on its own generated hearts too, the decoder realises about 0.7 of what the code says
(README, issue 19). The code says how far the heart contracts and the fields say where; a
per-heart scale on the gains, found by bisection, makes the moved LV eject what the code says.
Completion and generation alike. The decoder runs once: the fields are computed once and only
the warp of frame 0 is repeated, for one frame per heart, for each scale tried
(engine/cheart/boxed.py), so a calibrated sequence costs little more than a plain one.
"""

from __future__ import annotations

import torch

from cardio_explorer.engine.cheart.boxed import BoxedFields, boxed_fields, warp_in_boxes
from cardio_explorer.engine.cheart.motion_code import ejection_fractions, voxel_counts
from cardio_explorer.engine.labels import Label

SCALE_RANGE = (0.5, 4.0)
# Each step halves the scale's interval: 8 steps resolve it to 0.014, about 0.25 LVEF points.
STEPS = 8
# Searches on a new smallest frame at most (see calibrated_sequences).
ROUNDS = 3


def lv_ejection_fractions(labels: torch.Tensor) -> torch.Tensor:
    """Integer labels [B, T, D, H, W] -> LV ejection fraction (%) [B]: smallest volume
    against frame 0's."""
    volumes = voxel_counts(labels, (Label.LV,))[..., 0]
    return 100.0 * (1.0 - volumes.min(dim=1).values / volumes[:, 0].clamp_min(1.0))


def _lv_voxels(fields: BoxedFields, gains: torch.Tensor) -> torch.Tensor:
    """LV voxels [B, T'] of the frames ``fields`` move with ``gains`` [B, T']."""
    return voxel_counts(warp_in_boxes(fields, gains).labels(), (Label.LV,))[..., 0]


def _most_moved(fields: BoxedFields, gains: torch.Tensor) -> torch.Tensor:
    """Per heart the later frame [B] whose displacements, times its gain, are largest on
    average (0 for an empty heart)."""
    out = torch.zeros(len(gains), dtype=torch.int64, device=gains.device)
    for i, displacement in enumerate(fields.displacements):
        if displacement is not None:
            size = displacement.float().abs().flatten(1).mean(dim=1) * gains[i]
            out[i] = size.argmax()
    return out


def _ejected(smallest: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """LV ejection fraction (%) [B] of the smallest later volume against frame 0's [B]."""
    return 100.0 * (1.0 - torch.minimum(smallest, first) / first)


def _frames(fields: BoxedFields, index: torch.Tensor) -> BoxedFields:
    """The same fields for one later frame per heart, ``index`` [B]."""
    chosen = [
        d if d is None else d[int(k) : int(k) + 1]
        for d, k in zip(fields.displacements, index, strict=True)
    ]
    return fields._replace(displacements=chosen, n_later=1)


def calibrated_sequences(
    net: torch.nn.Module,
    z0: torch.Tensor,
    conditions: torch.Tensor,
    source: torch.Tensor | None = None,
    motion_noise: torch.Tensor | None = None,
    motion_code: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 labels [B, T, D, H, W], latents [B, T, z]) of sequences from frame-0 latents z0
    [B, z]: the given frames ``source`` [B, D, H, W] moved (completion) or, without them, the
    decoded frame 0; the motion code ``motion_code`` [B, 2] when given, else drawn with
    ``motion_noise`` [B, 2] from the network's prior or that prior's mean;
    each heart's gains scaled so that its LV ejects what its code says (the closest of the
    scales tried)."""
    with torch.autocast(z0.device.type, enabled=False):  # as CHeartNet.generate: LSTM in fp32
        z0, conditions = z0.float(), conditions.float()
        motion, _ = net.motion_of(z0, conditions, noise=motion_noise, code=motion_code)
        latents = net.unroll(z0, conditions, motion=motion)
    b, t, _ = latents.shape
    _, source, fields = boxed_fields(net, net.decoder_input(latents, conditions), b, t, source)
    gains = net.motion_code.displacement_gains(motion, t - 1).float()
    wanted = ejection_fractions(motion)[:, 0]
    first = voxel_counts(source[:, None].to(torch.uint8), (Label.LV,))[:, 0, 0].clamp_min(1.0)
    # The search warps one frame per heart, the one where its LV is smallest (a common scale
    # moves the volumes, hardly which frame is smallest), guessed as the frame that moves most;
    # where the calibrated sequence's smallest frame is another, the search runs again on that
    # one. The guess spares a warp of every frame (the warp is most of generation's time).
    smallest = _most_moved(fields, gains)
    best_labels = best_error = None
    for _ in range(ROUNDS):
        scale = _search(fields, gains, smallest, first, wanted)
        moved = warp_in_boxes(fields, gains * scale[:, None]).labels()
        later = voxel_counts(moved, (Label.LV,))[..., 0]
        error = (_ejected(later.min(dim=1).values, first) - wanted).abs()
        if best_labels is None:
            best_labels, best_error = moved, error
        else:
            better = error < best_error
            best_labels = torch.where(better[:, None, None, None, None], moved, best_labels)
            best_error = torch.minimum(error, best_error)
        moved_on = later.argmin(dim=1)
        if torch.equal(moved_on, smallest):
            break
        smallest = moved_on
    return torch.cat([source.to(torch.uint8)[:, None], best_labels], dim=1), latents.float()


def _search(
    fields: BoxedFields,
    gains: torch.Tensor,
    frame: torch.Tensor,
    first: torch.Tensor,
    wanted: torch.Tensor,
) -> torch.Tensor:
    """Per heart the scale of its gains [B] whose LV at later frame ``frame`` [B] ejects closest
    to ``wanted`` [B] (%) against frame 0's ``first`` voxels [B]; bisection."""
    end_systole = _frames(fields, frame)
    gain = gains.gather(1, frame[:, None])
    low = torch.full_like(wanted, SCALE_RANGE[0])
    high = torch.full_like(wanted, SCALE_RANGE[1])
    scale = torch.ones_like(wanted)
    best_scale, best_error = scale, torch.full_like(wanted, float("inf"))
    for _ in range(STEPS + 1):
        ejected = _ejected(_lv_voxels(end_systole, gain * scale[:, None])[:, 0], first)
        error = (ejected - wanted).abs()
        better = error < best_error
        best_scale = torch.where(better, scale, best_scale)
        best_error = torch.where(better, error, best_error)
        too_little = ejected < wanted
        low = torch.where(too_little, scale, low)
        high = torch.where(too_little, high, scale)
        scale = (low + high) / 2
    return best_scale
