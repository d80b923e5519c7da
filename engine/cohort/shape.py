"""The random part of a cohort heart: tissue classes and one heart's shape, drawn per group.

``sample_shape`` draws everything about one heart that stays fixed over its cycle; ``HeartModel``
(anatomy.py) rasterises it at any phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from cardio_explorer.engine.labels import Label


class Tissue(IntEnum):
    """Tissue classes of the richer map that images are made from (labels are coarser)."""

    NONE = 0
    LV_BLOOD = 1
    LV_MYO = 2
    RV_BLOOD = 3
    RV_WALL = 4
    LV_MUSCLE = 5  # papillary muscles and trabeculae: labelled LV blood pool
    EPI_FAT = 6
    ATRIAL_BLOOD = 7
    ATRIAL_WALL = 8


# Tissue -> label value (memory convention).
TISSUE_TO_LABEL = np.array(
    [Label.BACKGROUND, Label.LV, Label.MYO, Label.RV, 0, Label.LV, 0, 0, 0], dtype=np.uint8
)

# Sphericity (LV length / radius at ED) per group: dilated hearts are rounder, hypertrophied
# ones have a long narrow cavity.
_SPHERICITY = {"NOR": 3.2, "DCM": 2.5, "HCM": 4.0, "MINF": 2.8, "ARV": 3.2}
# Longitudinal shortening (base descent / LV length) at normal EF.
_LONG_SHORTENING = 0.13
# Mean and SD (rad) of the RV's turn about the LV from base to apex.
_RV_TWIST = (0.8, 0.3)
# Akinetic scar keeps this share of its end-diastolic position over the cycle.
AKINESIS = 0.9


@dataclass(frozen=True)
class Infarct:
    """A transmural scar: centre angle from the septum (rad), half-width (rad), depth range
    (fraction of LV length), thinning (fraction of wall lost)."""

    angle: float
    half_width: float
    z_range: tuple[float, float]
    thinning: float


@dataclass(frozen=True)
class HeartShape:
    """Everything random about one heart that stays fixed over its cycle."""

    group: str
    lv_length_mm: float
    lv_radius_mm: float
    centre_frac: float
    apex_wall_mm: float
    harmonics: tuple[tuple[int, float, float], ...]
    base_tilt: tuple[float, float]
    septum_angle: float
    centre_xy: tuple[float, float]
    bump_angle: float
    bump_width: float
    bump_z: tuple[float, float]
    bump_amp: float
    apical_taper: float
    infarct: Infarct | None
    rv_aspect: float
    rv_rotation: float
    rv_vertex_frac: float
    rv_length_frac: float
    rv_base_mm: float
    long_shortening: float
    papillary_angles: tuple[float, float]
    papillary_radius_mm: float
    trabecular_order: int
    trabecular_phase: float
    fat_phase: float
    rv_twist: float

    @property
    def apex_depth_mm(self) -> float:
        """Depth of the epicardial apex below the end-diastolic base."""
        return self.lv_length_mm + self.apex_wall_mm


def sample_shape(
    group: str,
    lvedv_ml: float,
    lvef: float,
    rng: np.random.Generator,
    max_length_mm: float = 118.0,
) -> HeartShape:
    """Random heart shape for a group, sized for its end-diastolic LV volume (a heart longer
    than ``max_length_mm`` is made rounder instead)."""
    sphericity = _SPHERICITY[group] * float(np.exp(rng.normal(0.0, 0.07)))
    centre_frac = float(rng.uniform(0.05, 0.15))
    # Volume of the truncated ellipsoid = pi a^2 L * shape_factor (a = L / sphericity).
    h = 1.0 - centre_frac
    c = centre_frac / h
    shape_factor = h * (2.0 / 3.0 + c - c**3 / 3.0)
    length = (lvedv_ml * 1000.0 * sphericity**2 / (np.pi * shape_factor)) ** (1.0 / 3.0)
    length = float(min(length, max_length_mm))
    radius = float(np.sqrt(lvedv_ml * 1000.0 / (np.pi * shape_factor * length)))
    harmonics = tuple(
        (k, float(rng.normal(0.0, 0.05 / k)), float(rng.uniform(0, 2 * np.pi))) for k in (2, 3, 4)
    )
    if group == "HCM":
        # Asymmetric septal hypertrophy: basal-mid septum (anteroseptal to inferoseptal).
        bump_angle = float(rng.normal(0.0, 0.25))
        bump_width = float(rng.uniform(0.9, 1.2))
        bump_z = (0.0, float(rng.uniform(0.7, 0.9)))
    else:
        # Mild regional variation anywhere.
        bump_angle = float(rng.uniform(-np.pi, np.pi))
        bump_width = float(rng.uniform(0.6, 1.0))
        lo = float(rng.uniform(0.0, 0.3))
        bump_z = (lo, lo + float(rng.uniform(0.3, 0.5)))
    infarct = None
    if group == "MINF":
        # LAD (anterior/anteroseptal, mid-apical), LCx (lateral) or RCA (inferior, basal-mid).
        territory = int(rng.integers(0, 3))
        angle, z_range = [
            (0.6, (0.35, 1.0)),
            (np.pi, (0.15, 0.8)),
            (-1.2, (0.0, 0.7)),
        ][territory]
        infarct = Infarct(
            angle=float(angle + rng.normal(0.0, 0.2)),
            half_width=float(rng.uniform(0.6, 1.0)),
            z_range=z_range,
            thinning=float(rng.uniform(0.4, 0.55)),
        )
    shortening = _LONG_SHORTENING * float(np.clip(np.sqrt(lvef / 60.0), 0.5, 1.15))
    lateral = np.pi + float(rng.normal(0.0, 0.1))
    return HeartShape(
        group=group,
        lv_length_mm=length,
        lv_radius_mm=radius,
        centre_frac=centre_frac,
        apex_wall_mm=float(rng.uniform(6.0, 10.0) if group == "HCM" else rng.uniform(4.0, 8.0)),
        harmonics=harmonics,
        base_tilt=tuple(float(v) for v in np.clip(rng.normal(0.0, 0.03, 2), -0.05, 0.05)),
        septum_angle=float(np.pi + rng.normal(0.0, 0.2)),  # septum and RV towards -x
        centre_xy=(float(rng.normal(12.0, 7.0)), float(rng.normal(0.0, 7.0))),
        bump_angle=bump_angle,
        bump_width=bump_width,
        bump_z=bump_z,
        bump_amp=0.3 if group == "HCM" else 0.1,
        apical_taper=float(rng.uniform(0.0, 0.15)),
        infarct=infarct,
        rv_aspect=float(rng.uniform(1.5, 1.9)) * (0.85 if group == "ARV" else 1.0),
        rv_rotation=float(rng.normal(0.0, 0.15)),
        rv_vertex_frac=float(rng.uniform(0.1, 0.35)),
        rv_length_frac=float(rng.uniform(0.78, 0.9)),
        rv_base_mm=float(rng.uniform(0.0, 6.0)),
        long_shortening=shortening,
        papillary_angles=(
            lateral - float(rng.uniform(0.8, 1.1)),
            lateral + float(rng.uniform(0.8, 1.1)),
        ),
        papillary_radius_mm=float(rng.uniform(3.0, 4.5)),
        trabecular_order=int(rng.integers(14, 22)),
        trabecular_phase=float(rng.uniform(0, 2 * np.pi)),
        fat_phase=float(rng.uniform(0, 2 * np.pi)),
        # Turn of the RV about the LV from base to apex (rad; ACDC: the RV centroid's angle
        # changes by 32 +- 12 degrees over a stack).
        rv_twist=float(rng.normal(_RV_TWIST[0], _RV_TWIST[1])),
    )
