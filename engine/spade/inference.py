"""Label volume + style -> MR-like image volume on the same grid, slice by slice in batches.

A 3D short-axis stack is synthesised slice by slice; a 3D+t sequence frame by frame (all its
slices in batches), so a cine-like sequence comes out of a 4D model's labels. One style code is
used for every slice and frame unless a per-slice array is given: a style held fixed keeps the
subject's appearance while its anatomy is morphed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.spade.network import SpadeModel
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

DEFAULT_BATCH = 32


@dataclass(frozen=True, eq=False)
class StyleSpec:
    """Where the style code comes from: a seed (a draw from the prior) or a reference image."""

    seed: int | None = None
    reference: ImageVolume | None = None

    def __post_init__(self) -> None:
        if (self.seed is None) == (self.reference is None):
            raise CardioInputError("style", "give exactly one of seed or reference")


Style = StyleSpec | np.ndarray | torch.Tensor


def _model_device(model: SpadeModel) -> torch.device:
    return next(model.parameters()).device


def _check_plane(volume: LabelVolume | ImageVolume, model: SpadeModel, what: str) -> None:
    size = model.config.image_size
    plane = tuple(volume.data.shape[-2:])
    if plane != (size, size):
        raise CardioInputError(
            volume.name or what,
            f"in-plane shape {plane[0]} x {plane[1]} does not fit the SPADE model, which makes "
            f"{size} x {size} slices; resample to 1.5 mm in-plane and crop to {size} x {size} "
            "around the heart first (engine.preprocess.preprocess_subject, or resample_inplane "
            "then crop_or_pad for a single volume)",
        )


def _slices(volume: LabelVolume | ImageVolume) -> np.ndarray:
    """(N, H, W) view of every slice of every frame."""
    return volume.data.reshape(-1, *volume.data.shape[-2:])


@torch.inference_mode()
def encode_style(
    model: SpadeModel,
    reference: ImageVolume,
    device: torch.device | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """Style code (z_dim,) of a reference image: the mean posterior mean over its slices.

    Slices without contrast (padding, outside the field of view) are left out.
    """
    _check_plane(reference, model, "reference image")
    device = device or _model_device(model)
    slices = _slices(reference)
    keep = slices.reshape(len(slices), -1).std(axis=1) > 1e-3
    if not keep.any():
        raise CardioInputError(reference.name or "reference image", "has no contrast to encode")
    slices = np.clip(slices[keep], -1.0, 1.0)
    codes = []
    for start in range(0, len(slices), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(slices[start : start + batch_size]))
        with autocast(device):
            codes.append(model.encode(batch[:, None].to(device)).mu.float().cpu())
    return torch.cat(codes).mean(dim=0).numpy()


def style_codes(
    model: SpadeModel, style: Style, n_slices: int, device: torch.device | None = None
) -> torch.Tensor:
    """Style codes (n_slices, z_dim) for a stack: one code broadcast, or one per slice."""
    z_dim = model.config.z_dim
    if isinstance(style, StyleSpec):
        if style.reference is not None:
            code = torch.from_numpy(encode_style(model, style.reference, device))
        else:
            generator = torch.Generator().manual_seed(int(style.seed))  # type: ignore[arg-type]
            code = torch.randn(z_dim, generator=generator)
    else:
        code = torch.as_tensor(
            np.asarray(style.cpu() if isinstance(style, torch.Tensor) else style)
        )
        code = code.float()
    if code.ndim == 1:
        code = code[None].expand(n_slices, -1)
    if code.shape != (n_slices, z_dim) or not torch.isfinite(code).all():
        raise CardioInputError(
            "style",
            f"a style code must be finite with shape ({z_dim},) or ({n_slices}, {z_dim}) "
            f"(one per slice), got {tuple(code.shape)}",
        )
    return code.contiguous()


@torch.inference_mode()
def synthesise_images(
    model: SpadeModel,
    labels: LabelVolume,
    style: Style | None = None,
    device: torch.device | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> ImageVolume:
    """MR-like image volume (same grid, frames and frame duration) from a label volume.

    style: ``StyleSpec(seed=...)``, ``StyleSpec(reference=ImageVolume)`` or a code array of
    shape (z_dim,) or (slices per frame, z_dim); default ``StyleSpec(seed=0)``. The model must be
    inference-ready (``load_spade`` / ``prepare_for_inference``); ``device`` defaults to its own.
    """
    what = labels.name or "label volume"
    _check_plane(labels, model, what)
    data = labels.data
    if not data.any():
        raise CardioInputError(what, "has no foreground (every voxel is background)")
    if labels.is_4d:
        empty = [t for t in range(labels.n_frames) if not data[t].any()]
        if empty:
            raise CardioInputError(what, f"frames {empty} have no foreground")
    if batch_size < 1:
        raise CardioInputError("batch_size", f"must be at least 1, got {batch_size}")
    device = device or _model_device(model)
    n_z = labels.spatial_shape[0]
    codes = style_codes(model, StyleSpec(seed=0) if style is None else style, n_z, device)
    codes = codes.repeat(labels.n_frames, 1)  # the same code for a slice in every frame
    slices = _slices(labels)
    out = np.empty(slices.shape, dtype=np.float32)
    for start in range(0, len(slices), batch_size):
        stop = min(start + batch_size, len(slices))
        batch = torch.from_numpy(np.ascontiguousarray(slices[start:stop])).to(device)
        with autocast(device):
            images = model.synthesise(batch, codes[start:stop].to(device))
        out[start:stop] = images.float().cpu().numpy()
    return ImageVolume(
        data=out.reshape(data.shape),
        affine=labels.affine,
        frame_duration_ms=labels.frame_duration_ms,
        name=f"{labels.name} (synthesised)" if labels.name else "synthesised image",
    )
