"""Where the RV lies around the LV: per-slice angles and their spread over hearts.

engine/frame.py turns every heart so that its LV -> RV axis (pooled over the stack) points
along -x; what is left is how the RV turns about the LV from slice to slice (base to apex).
These measures compare that, and the stored in-plane angle, between the cohort and real hearts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.volume import LabelVolume

# Slices with fewer voxels of LV (cavity + wall) or RV than this give no angle.
MIN_VOXELS = 10


def wrap_deg(angle: np.ndarray | float) -> np.ndarray:
    """Angles in degrees wrapped to [-180, 180)."""
    return (np.asarray(angle, dtype=float) + 180.0) % 360.0 - 180.0


def rv_slice_angles(vol: LabelVolume) -> np.ndarray:
    """Per-slice angle (degrees, atan2 of y, x in mm of the array axes) of the RV centroid about
    the LV centroid (cavity and wall), slice order as stored; slices without both are left out."""
    if vol.is_4d:
        raise ValueError("rv_slice_angles takes one 3D frame")
    _, sy, sx = vol.spacing_zyx
    out = []
    for plane in vol.data:
        lv = np.argwhere((plane == Label.LV) | (plane == Label.MYO))
        rv = np.argwhere(plane == Label.RV)
        if len(lv) < MIN_VOXELS or len(rv) < MIN_VOXELS:
            continue
        (ly, lx), (ry, rx) = lv.mean(axis=0), rv.mean(axis=0)
        out.append(math.degrees(math.atan2((ry - ly) * sy, (rx - lx) * sx)))
    return np.array(out)


def circular_mean_deg(angles: Iterable[float]) -> float:
    """Mean direction (degrees) of angles given in degrees."""
    radians = np.radians(np.fromiter(angles, dtype=float))
    return float(np.degrees(np.angle(np.exp(1j * radians).mean())))


def about_mean_deg(angles: Iterable[float]) -> np.ndarray:
    """Each angle relative to the circular mean of all, wrapped to [-180, 180)."""
    values = np.fromiter(angles, dtype=float)
    return wrap_deg(values - circular_mean_deg(values))
