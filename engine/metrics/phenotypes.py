"""Clinical phenotypes from label maps: ventricular volumes, EF, LV mass, maximum wall thickness.

All functions take the voxel geometry from the :class:`LabelVolume`; volumes are in mL, EF in
percent (0-100), LV mass = myocardium volume x 1.05 g/mL. Array axis 0 (z) is taken as the
short-axis slice axis (canonical orientation after reading / preprocessing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.volume import LabelVolume

MYOCARDIUM_DENSITY_G_PER_ML = 1.05
N_LABELS = 4

# Wall-thickness ray sampling (see max_wall_thickness_mm).
_N_RAYS = 180  # one ray every 2 degrees
_RAY_STEP_PX = 0.5  # sample step along a ray, in units of the finer in-plane pixel
_WINDOW_DEG = 30.0  # circular moving average of the thickness profile


def _require_3d(vol: LabelVolume, what: str) -> None:
    if vol.is_4d:
        raise CardioInputError(
            vol.name or what, f"expected one 3D frame, got a 3D+t volume of {vol.n_frames} frames"
        )


def label_counts(vol: LabelVolume) -> np.ndarray:
    """Voxel count of each label value 0..3 of a 3D volume (one np.bincount pass)."""
    return np.bincount(vol.data.ravel(), minlength=N_LABELS)[:N_LABELS]


def structure_volume_ml(vol: LabelVolume, label: int) -> float:
    """Volume in mL of one label in a 3D label volume."""
    _require_3d(vol, "label volume")
    if int(label) not in range(1, N_LABELS):
        raise CardioInputError("label", f"must be 1 (LV), 2 (MYO) or 3 (RV), got {label!r}")
    return float(np.count_nonzero(vol.data == label)) * vol.voxel_volume_ml


def lv_mass_g(vol: LabelVolume) -> float:
    """LV mass in grams: myocardium volume x 1.05 g/mL."""
    return structure_volume_ml(vol, Label.MYO) * MYOCARDIUM_DENSITY_G_PER_ML


def ejection_fraction(edv: float, esv: float) -> float:
    """Ejection fraction in percent, 100 (EDV - ESV) / EDV; 0 when EDV is 0 (empty structure)."""
    if edv <= 0:
        return 0.0
    return 100.0 * (edv - esv) / edv


def volume_curve(labels_4d: LabelVolume) -> dict[str, np.ndarray]:
    """Per-frame volumes in mL of a 3D+t label volume: keys 'lv', 'myo', 'rv' -> (T,) arrays."""
    data = labels_4d.data if labels_4d.is_4d else labels_4d.data[None]
    flat = data.reshape(data.shape[0], -1)
    counts = np.stack([np.bincount(frame, minlength=N_LABELS)[:N_LABELS] for frame in flat])
    ml = counts * labels_4d.voxel_volume_ml
    return {"lv": ml[:, Label.LV], "myo": ml[:, Label.MYO], "rv": ml[:, Label.RV]}


def max_wall_thickness_mm(vol: LabelVolume, *, corroborated: bool = True) -> float:
    """Maximum LV wall thickness in mm of a 3D (ED) frame, measured in-plane per short-axis slice.

    Method: radial rays, as clinicians read the thickest segment on short-axis cines. In each
    slice that holds both LV cavity and myocardium, 180 rays leave the cavity centroid; along
    each ray the myocardium mask is sampled with bilinear interpolation every half pixel in
    physical (mm) coordinates, so anisotropic pixels are handled, and the chord through the wall
    is the integral of that indicator (sum x step). The angular profile is smoothed with a 30
    degree circular moving average and its maximum taken; the result is the maximum over slices.

    Why this and not 2 x the distance transform on the medial axis: on a discrete ring the
    medial-axis estimate snaps to half-pixel steps (errors up to +-1 px that change with the
    ring's radius), while the interpolated chord is unbiased per ray (median error < 0.1 mm on
    rings of 6-15 mm at 1.5 mm pixels). The maximum of any per-ray measure is biased upward by
    the staircase of the discrete boundary; the 30 degree window keeps that bias to about
    +0.3 mm (0.2 px) on rings while preserving a regional (e.g. septal HCM) maximum wider than
    the window. Slices with myocardium but no cavity (apical cap) have no defined radial wall
    and are skipped; a volume with no measurable slice gives 0.0. A slice counts only up to
    what a neighbouring measured slice reads (``_corroborated_max``): one edge slice read 23.8 mm
    on a DCM morph whose other slices read 8-11 mm, and must not set the maximum.
    ``corroborated=False`` gives the plain maximum over slices (the cohort's anatomy is
    calibrated against it, so its hearts stay as they were).
    """
    _require_3d(vol, "label volume")
    _, sy, sx = vol.spacing_zyx
    myo = vol.data == Label.MYO
    cavity = vol.data == Label.LV
    slices = np.flatnonzero(myo.any(axis=(1, 2)) & cavity.any(axis=(1, 2)))
    if slices.size == 0:
        return 0.0

    # Cavity centroid per slice (pixel units), all slices in one bincount.
    zz, yy, xx = np.nonzero(cavity[slices])
    n_per = np.bincount(zz, minlength=len(slices))
    centre_y = np.bincount(zz, weights=yy, minlength=len(slices)) / n_per
    centre_x = np.bincount(zz, weights=xx, minlength=len(slices)) / n_per

    # Rays long enough to leave the farthest myocardium pixel of any measured slice.
    mz, my, mx = np.nonzero(myo[slices])
    reach_mm = np.hypot((my - centre_y[mz]) * sy, (mx - centre_x[mz]) * sx).max()
    step_mm = _RAY_STEP_PX * min(sy, sx)
    radii = np.arange(0.0, reach_mm + 2 * max(sy, sx), step_mm)
    angles = np.linspace(0.0, 2 * np.pi, _N_RAYS, endpoint=False)
    dy = np.outer(np.sin(angles), radii) / sy  # (rays, samples) offsets in pixels
    dx = np.outer(np.cos(angles), radii) / sx

    stack = myo[slices].astype(np.float32)
    coords = np.empty((3, len(slices), *dy.shape), dtype=np.float64)
    coords[0] = np.arange(len(slices))[:, None, None]
    coords[1] = centre_y[:, None, None] + dy
    coords[2] = centre_x[:, None, None] + dx
    samples = ndi.map_coordinates(stack, coords.reshape(3, -1), order=1, mode="constant")
    chords = samples.reshape(len(slices), *dy.shape).sum(axis=2) * step_mm  # (slices, rays)

    half = round(_WINDOW_DEG / 2 / (360.0 / _N_RAYS))
    padded = np.concatenate([chords[:, -half:], chords, chords[:, :half]], axis=1)
    kernel = np.full(2 * half + 1, 1.0 / (2 * half + 1))
    smoothed = ndi.convolve1d(padded, kernel, axis=1, mode="nearest")[:, half:-half]
    per_slice = smoothed.max(axis=1)
    return _corroborated_max(per_slice) if corroborated else float(per_slice.max())


def _corroborated_max(per_slice: np.ndarray) -> float:
    """The largest per-slice value that a neighbouring measured slice supports.

    Each slice counts only up to the larger of its two neighbours' values: a lone slice (a basal
    slice cutting the outflow tract or the myocardium tangentially) cannot set the maximum,
    while thickening seen on two adjacent slices is kept in full."""
    if per_slice.size == 1:
        return float(per_slice[0])
    padded = np.concatenate([[-np.inf], per_slice, [-np.inf]])
    neighbours = np.maximum(padded[:-2], padded[2:])
    return float(np.minimum(per_slice, neighbours).max())


@dataclass(frozen=True)
class Phenotypes:
    """Clinical phenotypes of one subject (volumes mL, EF %, mass g, wall mm)."""

    lvedv_ml: float
    lvesv_ml: float
    lvsv_ml: float
    lvef: float
    rvedv_ml: float
    rvesv_ml: float
    rvsv_ml: float
    rvef: float
    lvm_g: float
    max_wall_mm: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict of floats (for CSV and JSON)."""
        return {k: float(v) for k, v in asdict(self).items()}


def measure_phenotypes(ed: LabelVolume, es: LabelVolume, *, wall: bool = True) -> Phenotypes:
    """Phenotypes from the ED and ES label frames; LV mass and max wall thickness at ED.

    ``wall=False`` skips the (slow) maximum wall thickness: ``max_wall_mm`` is then NaN.
    """
    _require_3d(ed, "ED labels")
    _require_3d(es, "ES labels")
    ed_ml = label_counts(ed) * ed.voxel_volume_ml
    es_ml = label_counts(es) * es.voxel_volume_ml
    lvedv, lvesv = float(ed_ml[Label.LV]), float(es_ml[Label.LV])
    rvedv, rvesv = float(ed_ml[Label.RV]), float(es_ml[Label.RV])
    return Phenotypes(
        lvedv_ml=lvedv,
        lvesv_ml=lvesv,
        lvsv_ml=lvedv - lvesv,
        lvef=ejection_fraction(lvedv, lvesv),
        rvedv_ml=rvedv,
        rvesv_ml=rvesv,
        rvsv_ml=rvedv - rvesv,
        rvef=ejection_fraction(rvedv, rvesv),
        lvm_g=float(ed_ml[Label.MYO]) * MYOCARDIUM_DENSITY_G_PER_ML,
        max_wall_mm=max_wall_thickness_mm(ed) if wall else float("nan"),
    )
