"""Image-only anatomy of a cohort heart: RV free wall, epicardial fat, atria, papillary muscles
and trabeculae. None of it is labelled (labels come from anatomy.py's structures alone); it only
makes the images look like cine MR.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cardio_explorer.engine.cohort.shape import Tissue

if TYPE_CHECKING:
    from cardio_explorer.engine.cohort.anatomy import HeartModel


def add_surroundings(
    model: HeartModel,
    tissue: np.ndarray,
    prof: dict[str, np.ndarray],
    below: np.ndarray,
    rv_below: np.ndarray,
    s: float,
    k: float,
    q: float,
    qstar: np.ndarray,
    kstar: np.ndarray,
) -> None:
    """RV free wall, epicardial fat and the atria above the base (unlabelled tissue)."""
    free = tissue == Tissue.NONE
    rv_wall = free & rv_below & (qstar <= q + 1.8)
    tissue[rv_wall] = Tissue.RV_WALL
    free &= ~rv_wall
    zp = prof["zp"].astype(np.float32)[:, None, None]
    groove = zp < 0.15 * model.shape.lv_length_mm
    fat = free & below & (kstar > k) & (kstar <= k + 3.5) & (model.fat_patches | groove)
    tissue[fat] = Tissue.EPI_FAT
    free &= ~fat
    # Atria and outflow above the base: LA/LVOT over the LV, RA over the RV.
    above = free & ~below & (zp > -45.0)
    height = np.sqrt(np.clip(1.0 - (zp / -45.0) ** 2, 0.0, None))
    la_radius = np.float32(0.95 * model.a * s) * model.ashape * height
    atrial_blood = above & ((model.rho <= la_radius) | (qstar <= 0.85 * q))
    atrial_wall = (
        above & ~atrial_blood & ((model.rho <= la_radius + 2.5) | (qstar <= 0.85 * q + 1.5))
    )
    tissue[atrial_blood] = Tissue.ATRIAL_BLOOD
    tissue[atrial_wall] = Tissue.ATRIAL_WALL


def add_cavity_muscle(
    model: HeartModel,
    tissue: np.ndarray,
    lv: np.ndarray,
    prof: dict[str, np.ndarray],
    r0: np.ndarray,
    s: float,
    akinesis: np.ndarray | float,
    systole: float,
) -> None:
    """Papillary muscles and trabeculae inside the LV cavity (labelled as blood pool)."""
    sh = model.shape
    s_eff = 1.0 + (s - 1.0) * (1.0 - akinesis)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_n = np.where(lv, model.rho / (r0 * s_eff), 0.0)
    zp = prof["zp"].astype(np.float32)[:, None, None]
    zn = zp / np.float32(prof["length"])
    mid = (zn > 0.3) & (zn < 0.85)
    muscle = np.zeros_like(lv)
    # Papillary muscles: round, about 0.7 of the way from the axis to the wall, thicker
    # in systole.
    radius = np.float32(sh.papillary_radius_mm * (1.0 + 0.4 * systole))
    g = prof["g_endo"].astype(np.float32)[:, None, None]
    rho2 = model.rho * model.rho
    for angle, cos in zip(sh.papillary_angles, model.papillary_cos, strict=True):
        centre = np.float32(0.7 * model.a * s * float(model.shape_factor(np.array([angle]))[0]))
        centre = centre * g
        muscle |= rho2 + centre * centre - 2.0 * model.rho * centre * cos < radius * radius
    # cos(phase + 0.15 zp) without recomputing the angular phase each frame.
    shift = 0.15 * zp
    pattern = model.trabecular_cos * np.cos(shift) - model.trabecular_sin * np.sin(shift)
    trabeculae = (rho_n > 0.92) & (pattern > 0.7) & model.trabecular_patches
    muscle = lv & mid & (muscle | trabeculae)
    tissue[muscle] = Tissue.LV_MUSCLE
