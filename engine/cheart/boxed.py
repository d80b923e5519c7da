"""CHeart motion decoding for generation, computed inside each heart's box only.

A moved frame differs from background only inside frame 0's labelled box (``MOTION_MARGIN``,
engine/cheart/motion.py), so generation needs the displacements there alone. The full-grid path
(``CHeartNet._output``, training and validation) runs the decoder's last block, the
displacement head and the motion basis over the whole grid and then crops; this one runs them
on the band of inputs the box reads (a stride-2, 4-wide kernel reads a known band, so the
values inside the box are the same), mixes the basis fields and builds the sampling grid inside
the box. On the bundled model the box is about 45 % of the grid. Transposed convolutions with
few outputs run as 2 x 2 x 2 convolutions by output parity, and BatchNorm is folded into the
transposed convolutions: in fp32 the labels equal the full-grid path's; in bf16 the rounding
points move (bf16 vs fp32 agreement as before, tests/engine/test_precision.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

from cardio_explorer.engine.cheart.motion import (
    DISPLACEMENT_VOXELS,
    MotionBasis,
    MovedFrames,
    enclose_lv,
    labelled_box,
)
from cardio_explorer.engine.nn.onehot import one_hot

# Kernel taps of a stride-2, 4-wide transposed convolution that output parity p reads through
# input offset t (input j - 1 + t for output 2j - p): tap 3 - p - 2t.
_TAPS = torch.tensor([[3, 1], [2, 0]])


def _is_upsampling_by_two(layer: nn.Module) -> bool:
    return (
        isinstance(layer, nn.ConvTranspose3d)
        and layer.kernel_size == (4, 4, 4)
        and layer.stride == (2, 2, 2)
        and layer.padding == (1, 1, 1)
        and layer.output_padding == (0, 0, 0)
        and layer.dilation == (1, 1, 1)
        and layer.groups == 1
    )


def _parity_weight(weight: torch.Tensor) -> torch.Tensor:
    """ConvTranspose3d weight [Cin, Cout, 4, 4, 4] -> Conv3d weight [8 Cout, Cin, 2, 2, 2], the
    output channels grouped by output parity (z, y, x)."""
    cin, cout = weight.shape[:2]
    taps = _TAPS.flatten().to(weight.device)
    w = weight.index_select(2, taps).index_select(3, taps).index_select(4, taps)
    w = w.view(cin, cout, 2, 2, 2, 2, 2, 2)  # [ci, co, pz, tz, py, ty, px, tx]
    return w.permute(2, 4, 6, 1, 0, 3, 5, 7).reshape(8 * cout, cin, 2, 2, 2)


def read_band(box: tuple[slice, ...], sizes: tuple[int, ...]) -> tuple[slice, ...]:
    """The inputs (of sizes ``sizes``) that a stride-2, kernel-4, padding-1 transposed
    convolution reads for its outputs in ``box``."""
    band = []
    for b, n in zip(box, sizes, strict=True):
        # Output o reads inputs ceil(o / 2) - 1 and ceil(o / 2).
        first, last = -(-b.start // 2), -(-(b.stop - 1) // 2)
        band.append(slice(max(first - 1, 0), min(last + 1, n)))
    return tuple(band)


def _shifted(box: tuple[slice, ...], band: tuple[slice, ...]) -> tuple[slice, ...]:
    """``box`` (outputs) relative to the outputs of ``band`` (inputs) of a stride-2 layer."""
    return tuple(
        slice(b.start - 2 * a.start, b.stop - 2 * a.start) for b, a in zip(box, band, strict=True)
    )


def transposed_in_box(
    layer: nn.Module,
    h: torch.Tensor,
    box: tuple[slice, ...] | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """``layer(h)[..., *box]`` in fp32 for a stride-2 transposed convolution and h [N, C, d, h,
    w], computed from the band of ``h`` the box reads (None: the whole output); laid out in
    ``memory_format`` (channels_last_3d for an argmax over channels).

    The stride-2 transposed convolution runs as a 2 x 2 x 2 convolution with 8 x the output
    channels, one group per output parity, which are then interleaved: the same products, and
    oneDNN runs a convolution with 24 outputs about 5x faster than a transposed one with 3."""
    if box is None:
        box = tuple(slice(0, 2 * n) for n in h.shape[2:])
    if not _is_upsampling_by_two(layer):
        return layer(h)[(slice(None), slice(None), *box)].float()
    cout = layer.out_channels
    band = read_band(box, h.shape[2:])
    pad, starts, counts = [], [], []
    for b, n in zip(box, h.shape[2:], strict=True):
        first, last = -(-b.start // 2), -(-(b.stop - 1) // 2)
        pad.append((int(first - 1 < 0), int(last + 1 > n)))
        starts.append(first)
        counts.append(b.stop - b.start)
    x = h[(slice(None), slice(None), *band)]
    x = functional.pad(x, [p for side in reversed(pad) for p in side])
    bias = None if layer.bias is None else layer.bias.repeat(8)
    y = functional.conv3d(x, _parity_weight(layer.weight), bias)
    out = torch.empty((h.shape[0], cout, *counts), dtype=torch.float32, device=h.device)
    out = out.contiguous(memory_format=memory_format)
    for group, parity in enumerate(itertools.product(range(2), repeat=3)):
        source, target = [slice(group * cout, (group + 1) * cout)], []
        for p, b, first in zip(parity, box, starts, strict=True):
            r0 = (p - b.start) % 2
            j0 = (b.start + r0 + p) // 2 - first
            n_out = len(range(r0, b.stop - b.start, 2))
            source.append(slice(j0, j0 + n_out))
            target.append(slice(r0, None, 2))
        out[(slice(None), slice(None), *target)] = y[(slice(None), *source)]
    return out


def _basis_in_box(
    basis: MotionBasis, first: torch.Tensor, later: torch.Tensor, box: tuple[slice, ...]
) -> torch.Tensor:
    """``MotionBasis.forward`` of one heart inside its box: [T', 3, *box] (same ops)."""
    features = basis.anatomy[:-1](first)
    fields = transposed_in_box(basis.anatomy[-1], features, box)
    size = fields[0, 0].numel()
    amplitude = basis.amplitude(later).float()  # [T', k]
    mixed = torch.mm(amplitude, fields.reshape(basis.k, 3 * size))
    return mixed.view(len(later), 3, *fields.shape[2:])


def _sampling_grid(displacement: torch.Tensor) -> torch.Tensor:
    """grid_sample's grid [T', d, h, w, 3] (x, y, z) for displacements [T', 3, d, h, w] in
    decoder units, as ``warp_labels`` builds it (normalised, align_corners=False)."""
    t, _, *sizes = displacement.shape
    grid = torch.empty((t, *sizes, 3), dtype=torch.float32, device=displacement.device)
    for axis, s in enumerate(sizes):
        line = torch.linspace(-1 + 1 / s, 1 - 1 / s, s, device=displacement.device)
        shape = [1, 1, 1]
        shape[axis] = s
        # Voxels -> normalised units, multiplied in warp_labels's order.
        offset = displacement[:, axis] * DISPLACEMENT_VOXELS * (2.0 / s)
        grid[..., 2 - axis] = line.view(shape) + offset
    return grid


def _folded(conv: nn.ConvTranspose3d, bn: nn.BatchNorm3d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one transposed convolution (BatchNorm in eval)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.bias)
    weight = conv.weight * scale.view(1, -1, 1, 1, 1)
    return weight, (bias - bn.running_mean) * scale + bn.bias


def _is_folding(layers: Sequence[nn.Module]) -> bool:
    return (
        len(layers) >= 2
        and _is_upsampling_by_two(layers[0])
        and isinstance(layers[1], nn.BatchNorm3d)
        and not layers[1].training
        and layers[1].track_running_stats
    )


def _run(layers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """``nn.Sequential(*layers)(x)`` with each (transposed convolution, BatchNorm) pair as one
    convolution."""
    i = 0
    while i < len(layers):
        if _is_folding(layers[i : i + 2]):
            weight, bias = _folded(layers[i], layers[i + 1])
            x = functional.conv_transpose3d(x, weight, bias, stride=2, padding=1)
            i += 2
        else:
            x = layers[i](x)
            i += 1
    return x


def _band_of_last_block(
    layers: Sequence[nn.Module], x: torch.Tensor, band: tuple[slice, ...]
) -> torch.Tensor:
    """``nn.Sequential(*layers)(x)[..., *band]`` for the decoder's last block (transposed
    convolution, BatchNorm, activation), from the band of ``x`` it reads."""
    inputs = read_band(band, x.shape[2:])
    out = _run(layers, x[(slice(None), slice(None), *inputs)])
    return out[(slice(None), slice(None), *_shifted(band, inputs))]


class BoxedFields(NamedTuple):
    """What moves frame 0 in generation, before any gain: frame 0 one-hot [B, C, D, H, W], per
    heart its box (None when frame 0 is empty) and its later frames' displacements there
    [T', 3, *box] (decoder units)."""

    first: torch.Tensor
    boxes: list[tuple[slice, ...] | None]
    displacements: list[torch.Tensor | None]
    n_later: int


def boxed_fields(
    net: nn.Module, inputs: torch.Tensor, b: int, t: int, source: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, BoxedFields]:
    """Generation with motion from decoder inputs [B * T, z + k]: (frame-0 logits [B, C, D, H,
    W], frame-0 labels that move, the displacements inside each heart's box). The decoder's
    last block runs on frame 0 in full and, for the later frames, on the band their
    displacements read; BatchNorm is folded into the transposed convolutions."""
    decoder = net.decoder
    blocks = list(decoder.blocks)
    last = blocks[-4:-1]
    staged = len(blocks) >= 4 and _is_folding(last)
    x = decoder.fc(inputs).view(-1, *decoder.start)
    x = _run(blocks[:-4] if staged else blocks[:-1], x)
    x = x.view(b, t, *x.shape[1:])
    h0 = _run(last, x[:, 0]) if staged else x[:, 0]
    frame0_logits = transposed_in_box(blocks[-1], h0, memory_format=torch.channels_last_3d)
    if source is None:  # generation: warp the decoded frame 0, its LV closed
        source = enclose_lv(frame0_logits.argmax(dim=1))
    elif source.dim() == 5:
        source = source.argmax(dim=1)
    first = one_hot(source, net.config.n_labels)

    def later_features(i: int, band: tuple[slice, ...]) -> torch.Tensor:
        if staged:
            return _band_of_last_block(last, x[i, 1:], band)
        return x[i, 1:][(slice(None), slice(None), *band)]

    later = inputs.view(b, t, -1)[:, 1:]
    fields = fields_in_boxes(decoder.displacement, net.motion_basis, later_features, later, first)
    return frame0_logits, source, fields


def boxed_frames(
    net: nn.Module,
    inputs: torch.Tensor,
    b: int,
    t: int,
    source: torch.Tensor | None,
    gains: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, MovedFrames]:
    """``boxed_fields``, then frame 0 moved: (frame-0 logits, frame-0 labels moved, the moved
    frames). ``gains`` [B, T - 1] scale each heart's later frames' displacements (a motion
    code's)."""
    frame0_logits, source, fields = boxed_fields(net, inputs, b, t, source)
    return frame0_logits, source, warp_in_boxes(fields, gains)


def fields_in_boxes(
    decoder_head: nn.Module,
    basis: MotionBasis | None,
    later_features: Callable[[int, tuple[slice, ...]], torch.Tensor],
    later_inputs: torch.Tensor,
    first: torch.Tensor,
) -> BoxedFields:
    """The displacements that ``decoder_head`` reads from the half-resolution features of heart
    i's later frames inside a band, ``later_features(i, band)`` [T', F, *band], plus the motion
    basis mixed by ``later_inputs`` [B, T', z + k]; each heart inside its own box of frame 0
    (one-hot [B, C, D, H, W])."""
    half = tuple(n // 2 for n in first.shape[2:])
    boxes, displacements = [], []
    for i in range(later_inputs.shape[0]):
        box = labelled_box(first[i])
        boxes.append(box)
        if box is None:
            displacements.append(None)
            continue
        band = read_band(box, half)
        displacement = transposed_in_box(decoder_head, later_features(i, band), _shifted(box, band))
        if basis is not None:
            displacement = displacement + _basis_in_box(
                basis, first[i : i + 1], later_inputs[i], box
            )
        displacements.append(displacement)
    return BoxedFields(first, boxes, displacements, later_inputs.shape[1])


def warp_in_boxes(fields: BoxedFields, gains: torch.Tensor | None = None) -> MovedFrames:
    """Frames 1.. as frame 0 moved by the displacements of ``fields``, times ``gains`` [B, T']
    when given; each heart inside its own box."""
    first = fields.first
    foreground: list[torch.Tensor | None] = []
    for i, (box, displacement) in enumerate(zip(fields.boxes, fields.displacements, strict=True)):
        if box is None or displacement is None:
            foreground.append(None)
            continue
        if gains is not None:
            displacement = displacement * gains[i].float()[:, None, None, None, None]
        inside = first[i, 1:][(slice(None), *box)].float()
        foreground.append(
            functional.grid_sample(
                inside[None].expand(fields.n_later, *inside.shape),
                _sampling_grid(displacement),
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )
        )
    grid = tuple(first.shape[2:])
    n_labels = first.shape[1]
    return MovedFrames(fields.boxes, foreground, grid, n_labels, fields.n_later, first.device)
