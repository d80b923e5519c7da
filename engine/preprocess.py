"""Preprocessing as the seed paper: canonical orientation, in-plane resampling, crop around the
heart, percentile intensity normalisation; subjects also go to one anatomical frame
(engine/frame.py). Geometry is carried through every step: each new
affine maps the new voxel centres to the same world positions, so volumes in mL stay right.

Every function takes and returns :class:`LabelVolume` / :class:`ImageVolume` (3D or 3D+t). The
short-axis slice axis is array axis z (index k); "in-plane" means array axes y and x.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import NamedTuple, TypeVar

import numpy as np
from nibabel import orientations
from scipy import ndimage

from cardio_explorer.engine.errors import CardioInputError, CardioWarning
from cardio_explorer.engine.frame import (
    AnatomicalFrame,
    frame_index_map,
    heart_centre,
    measure_frame,
    to_anatomical_frame,
    with_source,
)
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import ImageVolume, LabelVolume, Volume

V = TypeVar("V", bound=Volume)

DEFAULT_SPACING_MM = 1.5
DEFAULT_SIZE = 128
# "anatomical": the frame found from the labels (engine/frame.py); "header": the canonical
# (header) orientation only, resampled and cropped around the heart, never rotated, mirrored or
# slice-flipped (the arm that relies on rotation/flip augmentation instead).
FRAMES = ("anatomical", "header")
DEFAULT_FRAME = "anatomical"


def check_frame(frame: str, thing: str = "frame") -> str:
    """``frame`` if it is one of FRAMES, else a CardioInputError naming ``thing``."""
    if frame not in FRAMES:
        raise CardioInputError(thing, f"must be one of {list(FRAMES)}, got {frame!r}")
    return frame


def frame_of_checkpoint(extra: dict) -> str:
    """The frame a model's training hearts were in (extra["grid"]["frame"]; older: anatomical)."""
    frame = (extra.get("grid") or {}).get("frame", DEFAULT_FRAME)
    return check_frame(frame, "checkpoint grid frame")


# orientation --------------------------------------------------------------------------------
def slice_axis(vol: Volume) -> int:
    """Index axis (0 x, 1 y, 2 z) across the short-axis slices: the coarsest, else z."""
    spacing = np.asarray(vol.spacing_xyz)
    coarsest = int(np.argmax(spacing))
    # Near-isotropic grids keep the file's own slice axis.
    return coarsest if spacing[coarsest] > 1.05 * spacing[2] else 2


def canonical_transform(vol: Volume) -> np.ndarray:
    """nibabel orientation transform (3 x 2) putting a volume in canonical order.

    Canonical: the slice axis becomes index z; the two in-plane axes become x and y in the
    order of the world axes (R, A, S) they lie closest to; every axis points the positive way
    along its nearest world axis (as RAS+). Oblique grids are permuted and flipped only, never
    resampled, so no voxel value changes.
    """
    ornt = orientations.io_orientation(vol.affine)  # per index axis: (world axis, flip)
    through = slice_axis(vol)
    in_plane = sorted((a for a in range(3) if a != through), key=lambda a: ornt[a, 0])
    target = [*in_plane, through]  # new index axis d comes from old axis target[d]
    transform = np.zeros((3, 2))
    for new_axis, old_axis in enumerate(target):
        transform[old_axis] = (new_axis, ornt[old_axis, 1])
    return transform


def to_canonical_orientation(vol: V) -> V:
    """Permute and flip the array axes into canonical order; world positions are unchanged."""
    transform = canonical_transform(vol)
    if np.array_equal(transform, [[0, 1], [1, 1], [2, 1]]):
        return vol
    xyz = _xyz_view(vol.data)
    shape_xyz = xyz.shape[:3]
    moved = orientations.apply_orientation(xyz, transform)
    affine = vol.affine @ orientations.inv_ornt_aff(transform, shape_xyz)
    return replace(vol, data=_from_xyz(moved), affine=affine)


def _xyz_view(data: np.ndarray) -> np.ndarray:
    """(z, y, x[, ...]) memory order seen as (x, y, z[, t]) without copying."""
    return data.transpose(tuple(range(data.ndim))[::-1])


def _from_xyz(data: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(data.transpose(tuple(range(data.ndim))[::-1]))


# in-plane resampling ------------------------------------------------------------------------
def resample_inplane(vol: V, spacing_mm: float = DEFAULT_SPACING_MM) -> V:
    """Resample array axes y and x to ``spacing_mm``; labels nearest, images linear.

    The field of view keeps its first edge: new voxel m has its centre at old index
    -0.5 + (m + 0.5) * new / old spacing, and the new affine says exactly that. The slice axis
    is untouched.
    """
    if not np.isfinite(spacing_mm) or spacing_mm <= 0:
        raise CardioInputError("spacing_mm", f"must be a positive number, got {spacing_mm!r}")
    _, sy, sx = vol.spacing_zyx
    ratio = np.array([1.0, spacing_mm / sy, spacing_mm / sx])  # old index step per new voxel
    if np.allclose(ratio, 1.0, atol=1e-6):
        return vol
    nz, ny, nx = vol.spatial_shape
    shape = (nz, max(1, round(ny / ratio[1])), max(1, round(nx / ratio[2])))
    offset = -0.5 + 0.5 * ratio
    offset[0] = 0.0
    is_label = isinstance(vol, LabelVolume)
    order = 0 if is_label else 1
    frames = vol.data if vol.is_4d else vol.data[None]
    out = np.stack(
        [
            ndimage.affine_transform(
                frame,
                ratio,
                offset=offset,
                output_shape=shape,
                order=order,
                mode="nearest",
                output=frame.dtype,
            )
            for frame in frames
        ]
    )
    data = out if vol.is_4d else out[0]
    # index map new (x, y, z) -> old (x, y, z), reversed from the (z, y, x) arrays above
    step = np.eye(4)
    step[:3, :3] = np.diag(ratio[::-1])
    step[:3, 3] = offset[::-1]
    return replace(vol, data=data, affine=vol.affine @ step)


# crop / pad ---------------------------------------------------------------------------------
class CropBox(NamedTuple):
    """First kept (y, x) index of the old grid (may be negative: padding) and the size."""

    y0: int
    x0: int
    size: int


def crop_box(
    vol: Volume, size: int = DEFAULT_SIZE, centre: tuple[float, float] | None = None
) -> CropBox:
    """The size x size in-plane window centred on ``centre`` (y, x), else on the grid centre."""
    if int(size) != size or size < 1:
        raise CardioInputError("size", f"must be a positive whole number, got {size!r}")
    _, ny, nx = vol.spatial_shape
    cy, cx = centre if centre is not None else ((ny - 1) / 2, (nx - 1) / 2)
    # A window of even size has no middle voxel: the centre lies between its two middle ones.
    return CropBox(
        int(np.floor(cy - (size - 1) / 2 + 0.5)),
        int(np.floor(cx - (size - 1) / 2 + 0.5)),
        int(size),
    )


def crop_or_pad(
    vol: V,
    size: int = DEFAULT_SIZE,
    centre: tuple[float, float] | None = None,
    *,
    box: CropBox | None = None,
    fill: float | None = None,
) -> V:
    """In-plane crop and/or pad to size x size around centre (y, x array index).

    Default centre: the heart's centre (foreground centroid over all frames) for labels, the
    grid centre otherwise. Padding is 0 (background) for labels and the image minimum for
    images unless ``fill`` says otherwise. The affine origin moves with the window.
    """
    if box is None:
        if centre is None and isinstance(vol, LabelVolume):
            centre = heart_centre(vol)
        box = crop_box(vol, size, centre)
    y0, x0, n = box
    _, ny, nx = vol.spatial_shape
    if fill is None:
        fill = 0 if isinstance(vol, LabelVolume) else float(vol.data.min(initial=0.0))
    out = np.full((*vol.data.shape[:-2], n, n), fill, dtype=vol.data.dtype)
    sy = slice(max(y0, 0), min(y0 + n, ny))
    sx = slice(max(x0, 0), min(x0 + n, nx))
    if sy.start < sy.stop and sx.start < sx.stop:
        out[..., sy.start - y0 : sy.stop - y0, sx.start - x0 : sx.stop - x0] = vol.data[..., sy, sx]
    shift = np.eye(4)
    shift[:3, 3] = (x0, y0, 0)  # new index (x, y, z) -> old index
    return replace(vol, data=out, affine=vol.affine @ shift)


# intensities --------------------------------------------------------------------------------
def normalise_intensity(
    img: ImageVolume, percentiles: tuple[float, float] = (1.0, 99.0)
) -> ImageVolume:
    """Clip to the given percentiles (over all frames) and map linearly to [-1, 1]."""
    low_p, high_p = percentiles
    if not 0 <= low_p < high_p <= 100:
        raise CardioInputError("percentiles", f"need 0 <= low < high <= 100, got {percentiles}")
    low, high = np.percentile(img.data, [low_p, high_p])
    return img.with_data(_scale(img.data, float(low), float(high)))


def _scale(data: np.ndarray, low: float, high: float) -> np.ndarray:
    """[low, high] -> [-1, 1], clipped; a constant image (no contrast) maps to 0."""
    if high <= low:
        return np.zeros_like(data, dtype=np.float32)
    return ((np.clip(data, low, high) - low) / (high - low) * 2.0 - 1.0).astype(np.float32)


# subjects -----------------------------------------------------------------------------------
def preprocess_subject(
    subject: Subject,
    spacing_mm: float = DEFAULT_SPACING_MM,
    size: int = DEFAULT_SIZE,
    frame: str = DEFAULT_FRAME,
) -> Subject:
    """Anatomical frame, in-plane resampling, one window for all frames, normalised images.

    Each volume is put in canonical order (header), then resampled once onto a size x size grid
    of spacing_mm in the anatomical frame found from all labelled frames together
    (engine/frame.py: LV -> RV along -x, base at slice 0), centred on the heart. Every volume
    remembers its file's grid (``source_grid``) so results can go back to it. Without labels,
    images are only resampled and cropped around the grid centre. ``frame="header"`` keeps the
    canonical (header) orientation: same resampling and crop centred on the heart, no rotation,
    mirror or slice flip. A CardioWarning is raised when the window cuts off foreground (a
    heart wider than size x spacing_mm).
    """
    check_frame(frame)
    if not subject.labels and not subject.images:
        raise CardioInputError(subject.subject_id, "nothing to preprocess (no frames loaded)")
    if not np.isfinite(spacing_mm) or spacing_mm <= 0:
        raise CardioInputError("spacing_mm", f"must be a positive number, got {spacing_mm!r}")
    if int(size) != size or size < 1:
        raise CardioInputError("size", f"must be a positive whole number, got {size!r}")

    def canonical(vol: V) -> V:
        return to_canonical_orientation(with_source(vol))

    labels = {t: canonical(v) for t, v in subject.labels.items()}
    images = {t: canonical(v) for t, v in subject.images.items()}
    if labels:
        found = measure_frame(list(labels.values()))
        if frame == "header":  # angle None: no rotation; the heart still centres the window
            found = AnatomicalFrame(None, False, False, found.centre_yx, found.scanner_oriented)
    else:
        grid = next(iter(images.values()))
        _, ny, nx = grid.spatial_shape
        found = AnatomicalFrame(None, False, False, ((ny - 1) / 2, (nx - 1) / 2))
    if images:
        images = _normalise_together(images)
    framed_labels = {t: to_anatomical_frame(v, found, spacing_mm, size) for t, v in labels.items()}
    framed_images = {
        t: to_anatomical_frame(v, found, spacing_mm, size, fill=-1.0) for t, v in images.items()
    }
    lost = sum(
        _lost_ml(v, frame_index_map(v, found, spacing_mm, size), size) for v in labels.values()
    )
    if lost > 0:
        warnings.warn(
            f"{subject.subject_id}: the {size} x {size} crop at {spacing_mm} mm cuts off "
            f"{lost:.2f} mL of foreground",
            CardioWarning,
            stacklevel=2,
        )
    info = dict(subject.info)
    info["preprocess"] = {
        "spacing_mm": spacing_mm,
        "size": size,
        "frame": {"kind": frame, **found.as_info()},
    }
    return replace(subject, labels=framed_labels, images=framed_images, info=info)


def _lost_ml(vol: LabelVolume, index_map: np.ndarray, size: int) -> float:
    """Foreground (mL) of ``vol`` whose voxel centres fall outside the new size x size window."""
    zyx = np.argwhere(vol.data > 0)
    if not len(zyx):
        return 0.0
    xyz1 = np.c_[zyx[:, ::-1], np.ones(len(zyx))]
    new = xyz1 @ np.linalg.inv(index_map).T
    inside = np.all((new[:, :2] >= -0.5) & (new[:, :2] <= size - 0.5), axis=1)
    return float(np.count_nonzero(~inside)) * vol.voxel_volume_ml


def _normalise_together(images: dict[int, ImageVolume]) -> dict[int, ImageVolume]:
    """Percentile normalisation with one window for all frames, so frames stay comparable."""
    low, high = np.percentile(np.stack([v.data for v in images.values()]), [1.0, 99.0])
    return {t: v.with_data(_scale(v.data, float(low), float(high))) for t, v in images.items()}
