"""Topology of label maps: is the LV blood pool enclosed by myocardium?

The LV blood pool's boundary voxels are its voxels with an in-plane (4-connected) neighbour of
another label. Short-axis labels are drawn slice by slice and the base of the LV is open (the
valve plane is not labelled), so only in-plane neighbours count: a basal slice whose cavity has
nothing above it is anatomy, a cavity voxel that touches background or RV within its slice is
blood leaking through the wall. The most basal slice holding LV (the first, in the anatomical
frame's base-to-apex order) is left out: it is the valve plane, where even the ground-truth
cohort's cavity opens onto the atria and outflow tract.
"""

from __future__ import annotations

import numpy as np

from cardio_explorer.engine.labels import Label


def lv_exposed_fraction(labels: np.ndarray) -> float:
    """Fraction of LV blood-pool boundary voxels (in-plane, basal LV slice left out) that touch
    background or RV directly, for one frame [D, H, W] of internal labels (base at slice 0);
    0.0 when there is no LV."""
    data = np.asarray(labels)
    if data.ndim != 3:
        raise ValueError(f"expected one 3D frame [D, H, W], got shape {data.shape}")
    lv = data == Label.LV
    slices = np.flatnonzero(lv.any(axis=(1, 2)))
    if len(slices) == 0:
        return 0.0
    lv[slices[0]] = False
    # Outside the grid counts as background: a cavity cut by the field of view is exposed.
    padded = np.pad(data, ((0, 0), (1, 1), (1, 1)), constant_values=int(Label.BACKGROUND))
    neighbours = (
        padded[:, :-2, 1:-1],
        padded[:, 2:, 1:-1],
        padded[:, 1:-1, :-2],
        padded[:, 1:-1, 2:],
    )
    boundary = np.zeros_like(lv)
    exposed = np.zeros_like(lv)
    for n in neighbours:
        boundary |= n != Label.LV
        exposed |= (n == Label.BACKGROUND) | (n == Label.RV)
    n_boundary = int(np.count_nonzero(boundary & lv))
    return float(np.count_nonzero(exposed & lv)) / n_boundary if n_boundary else 0.0


def sequence_exposed_fractions(sequence: np.ndarray) -> np.ndarray:
    """``lv_exposed_fraction`` of every frame of a sequence [T, D, H, W]."""
    return np.array([lv_exposed_fraction(frame) for frame in np.asarray(sequence)])
