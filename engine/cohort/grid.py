"""Voxel grids of the synthetic cohort: ACDC-like short-axis stacks and a dense 3D grid.

The anatomy is built in a heart-aligned frame: z runs along the LV long axis from base (low z)
to apex (high z), so short-axis slices are array z, and the RV lies towards -x of the LV. The
anatomy is placed in that frame's millimetres and sampled at voxel centres; ``slice_shift_xy``
moves the anatomy per slice in-plane (breath-hold misalignment of real short-axis stacks).
``inplane_rad`` turns the image axes about the long axis, as the operator's in-plane planning
does: the heart appears at another angle in the image while it stays where it is in the patient.

The files say where that frame lies in the patient (:data:`PATIENT_FROM_HEART`), as a scanner's
headers do: the RV anterior and to the right of the LV, the apex anterior, inferior and to the
left of the base, so the short axis is double-oblique. Readers therefore see a true scanner
orientation, and engine/frame.py puts the cohort's hearts in each model's handedness the way
it puts M&Ms hearts there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cardio_explorer.engine.frame import TYPICAL_PATIENT_FROM_FRAME
from cardio_explorer.engine.volume import diagonal_affine

# Heart frame -> patient (RAS): what a scanner's header holds for a short-axis stack. The heart
# frame is engine/frame.py's anatomical frame, so the shared core keeps the matrix.
PATIENT_FROM_HEART = TYPICAL_PATIENT_FROM_FRAME
# SD and limit (degrees) of the in-plane planning angle. With the anatomy's own spread (shape.py)
# the LV -> RV axis of ACDC's stored arrays is matched: SD 31 degrees about its mean, 90 % within
# -33..+61, extremes -39 and +75 (80 subjects).
INPLANE_SD_DEG = 29.0
INPLANE_MAX_DEG = 70.0

DENSE_GRID = (64, 128, 128)
DENSE_SPACING = (2.0, 1.25, 1.25)

SAX_PIXEL_MM = (1.3, 1.7)
SAX_MATRIX = (150, 168)
SAX_SLICES = (8, 14)
SAX_SLICE_MM = (5.0, 10.0)


@dataclass(frozen=True)
class Grid:
    """A 3D voxel grid: shape and spacing in array order (z, y, x), origin in world mm (x, y, z).

    slice_shift_xy: (Z, 2) in-plane shift (x, y) in mm of the anatomy in each slice.
    inplane_rad: angle of the heart frame's in-plane axes as the image shows them (the anatomy
    is drawn turned by it; the affine turns it back, so the patient sees the same heart).
    """

    shape: tuple[int, int, int]
    spacing_zyx: tuple[float, float, float]
    origin_xyz: tuple[float, float, float]
    slice_shift_xy: np.ndarray
    inplane_rad: float = 0.0

    @property
    def affine(self) -> np.ndarray:
        """NIfTI affine of the (x, y, z) voxel index, in patient coordinates."""
        image = diagonal_affine(self.spacing_zyx, self.origin_xyz)
        return PATIENT_FROM_HEART @ _about_long_axis(-self.inplane_rad) @ image

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in mL."""
        return float(np.prod(self.spacing_zyx)) / 1000.0

    def axis_mm(self, axis: int) -> np.ndarray:
        """World coordinates (mm) of the voxel centres along array axis 0 (z), 1 (y) or 2 (x)."""
        origin = self.origin_xyz[2 - axis]
        return origin + np.arange(self.shape[axis]) * self.spacing_zyx[axis]


def _about_long_axis(angle_rad: float) -> np.ndarray:
    """4 x 4 rotation by ``angle_rad`` about the heart frame's z (long) axis."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    out = np.eye(4)
    out[:2, :2] = [[c, -s], [s, c]]
    return out


def inplane_angle(rng: np.random.Generator) -> float:
    """Random in-plane planning angle (radians) of one acquisition."""
    deg = float(np.clip(rng.normal(0.0, INPLANE_SD_DEG), -INPLANE_MAX_DEG, INPLANE_MAX_DEG))
    return math.radians(deg)


def sax_grid(
    rng: np.random.Generator, heart_length_mm: float, base_margin_mm: float, misalignment_mm: float
) -> Grid:
    """Short-axis stack like ACDC: 1.3-1.7 mm pixels, 150-168 px, 8-14 slices of 5-10 mm.

    The world z = 0 plane is the end-diastolic base; the stack starts a little above it (slice 0
    may show the atria) and reaches past the apex (``heart_length_mm`` below the base).
    """
    pixel = float(rng.uniform(*SAX_PIXEL_MM))
    ny, nx = (int(v) for v in rng.integers(SAX_MATRIX[0], SAX_MATRIX[1] + 1, size=2))
    above = float(rng.uniform(0.3, 0.7))  # first slice centre above the base, in slices
    extent = heart_length_mm + base_margin_mm

    def slices(step: float) -> int:
        # The last slice centre lies at most 0.4 slices short of the apex.
        return math.ceil(extent / step + above + 0.6)

    # ACDC stacks mostly have 8-10 mm between slice centres.
    dz = float(rng.uniform(7.0, SAX_SLICE_MM[1]))
    n = slices(dz)
    if n > SAX_SLICES[1]:
        dz = min(SAX_SLICE_MM[1], extent / (SAX_SLICES[1] - above - 0.6))
        n = SAX_SLICES[1]
    elif n < SAX_SLICES[0]:
        dz = max(SAX_SLICE_MM[0], extent / (SAX_SLICES[0] - above - 0.6))
        n = max(SAX_SLICES[0], min(SAX_SLICES[1], slices(dz)))
    z0 = -above * dz - base_margin_mm
    origin = (-(nx - 1) / 2 * pixel, -(ny - 1) / 2 * pixel, z0)
    shift = rng.normal(0.0, misalignment_mm, size=(n, 2)) if misalignment_mm > 0 else None
    return Grid(
        shape=(n, ny, nx),
        spacing_zyx=(dz, pixel, pixel),
        origin_xyz=origin,
        slice_shift_xy=shift if shift is not None else np.zeros((n, 2)),
    )


def dense_grid(
    rng: np.random.Generator,
    heart_length_mm: float,
    shape: tuple[int, int, int] = DENSE_GRID,
    spacing_zyx: tuple[float, float, float] = DENSE_SPACING,
) -> Grid:
    """Dense 3D grid (default 128 x 128 x 64 at 1.25 x 1.25 x 2 mm, as CHeart) around the heart."""
    nz, ny, nx = shape
    dz, dy, dx = spacing_zyx
    extent = nz * dz
    # Base at 6-10 % of the extent from the top, but never so low that the apex falls off.
    top = float(rng.uniform(0.06, 0.10)) * extent
    top = max(2.0 * dz, min(top, extent - heart_length_mm - 2.0 * dz))
    origin = (-(nx - 1) / 2 * dx, -(ny - 1) / 2 * dy, -top)
    return Grid(
        shape=(nz, ny, nx),
        spacing_zyx=(dz, dy, dx),
        origin_xyz=origin,
        slice_shift_xy=np.zeros((nz, 2)),
    )
