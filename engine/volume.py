"""Volumes that carry their geometry: labels and images on one voxel grid with a NIfTI affine.

Axis order in memory is (z, y, x) for 3D and (t, z, y, x) for 3D+t, as torch (D, H, W) and
SimpleITK's ``GetArrayFromImage``. The affine is the NIfTI one: it maps the homogeneous voxel
index (x, y, z, 1), i.e. the array axes reversed, to world millimetres (RAS+). Spacing, origin
and direction are derived from it, never stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Self

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import LABEL_TABLE, LabelTable


def diagonal_affine(
    spacing_zyx: tuple[float, float, float], origin_xyz: tuple[float, float, float] = (0, 0, 0)
) -> np.ndarray:
    """Axis-aligned affine for a grid with the given spacing (array order) and origin."""
    sz, sy, sx = (float(s) for s in spacing_zyx)
    affine = np.diag([sx, sy, sz, 1.0])
    affine[:3, 3] = origin_xyz
    return affine


@dataclass(frozen=True, eq=False)
class SourceGrid:
    """The voxel grid of the file a volume was read from: spatial shape (z, y, x) and affine.

    Preprocessing moves a heart into the anatomical frame (engine/frame.py) and keeps every
    affine world-consistent, so this is all it takes to go back (``frame.to_source_grid``).
    """

    shape: tuple[int, int, int]
    affine: np.ndarray


@dataclass(frozen=True, eq=False)
class Volume:
    """Array on a voxel grid; base of :class:`LabelVolume` and :class:`ImageVolume`.

    data: (z, y, x) or (t, z, y, x). affine: 4 x 4 NIfTI affine of the (x, y, z) index.
    frame_duration_ms: time between frames of a 3D+t volume (pixdim[4] in NIfTI), else None.
    source_grid: the grid of the file it came from, kept through preprocessing, else None.
    """

    data: np.ndarray
    affine: np.ndarray
    frame_duration_ms: float | None = None
    name: str = ""
    source_grid: SourceGrid | None = None

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        what = self.name or type(self).__name__
        if self.data.ndim not in (3, 4):
            raise CardioInputError(what, f"expected a 3D or 3D+t array, got {self.data.ndim}D")
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise CardioInputError(what, "affine must be a finite 4 x 4 matrix")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise CardioInputError(what, "affine is singular (zero spacing?)")
        object.__setattr__(self, "affine", affine)

    # geometry -------------------------------------------------------------------------------
    @property
    def is_4d(self) -> bool:
        """True for a 3D+t volume."""
        return self.data.ndim == 4

    @property
    def n_frames(self) -> int:
        """Number of time frames (1 for a 3D volume)."""
        return self.data.shape[0] if self.is_4d else 1

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """(z, y, x) shape of one frame."""
        return tuple(self.data.shape[-3:])  # type: ignore[return-value]

    @property
    def spacing_xyz(self) -> tuple[float, float, float]:
        """Voxel size in mm along the index axes x, y, z (NIfTI / SimpleITK order)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Voxel size in mm along the array axes z, y, x."""
        sx, sy, sz = self.spacing_xyz
        return (sz, sy, sx)

    @property
    def origin_xyz(self) -> tuple[float, float, float]:
        """World position (mm, RAS+) of voxel (0, 0, 0)."""
        return tuple(float(v) for v in self.affine[:3, 3])  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        """3 x 3 matrix of unit column vectors: world direction of the x, y, z index axes."""
        return self.affine[:3, :3] / np.asarray(self.spacing_xyz)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def same_grid(self, other: Volume, atol: float = 1e-4) -> bool:
        """True when both volumes share spatial shape and affine."""
        return self.spatial_shape == other.spatial_shape and np.allclose(
            self.affine, other.affine, atol=atol
        )

    def index_to_world(self, zyx: np.ndarray) -> np.ndarray:
        """World mm (N, 3) of array indices (N, 3) given in (z, y, x) order."""
        zyx = np.atleast_2d(np.asarray(zyx, dtype=np.float64))
        xyz1 = np.c_[zyx[:, ::-1], np.ones(len(zyx))]
        return (xyz1 @ self.affine.T)[:, :3]

    # derived volumes ------------------------------------------------------------------------
    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        spacing_zyx: tuple[float, float, float],
        origin_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0),
        **kwargs: Any,
    ) -> Self:
        """Axis-aligned volume of this type from an array in (z, y, x) or (t, z, y, x) order."""
        return cls(data=data, affine=diagonal_affine(spacing_zyx, origin_xyz), **kwargs)

    def frame(self, t: int) -> Self:
        """One frame of a 3D+t volume as a 3D volume of the same type on the same grid."""
        if not self.is_4d:
            if t != 0:
                raise IndexError(f"3D volume has only frame 0, asked for {t}")
            return self
        return replace(self, data=self.data[t], frame_duration_ms=None)

    def with_data(self, data: np.ndarray, **changes: Any) -> Self:
        """Same geometry and type, other data (the spatial shape must match)."""
        if tuple(data.shape[-3:]) != self.spatial_shape:
            raise ValueError(f"shape {data.shape} does not match grid {self.spatial_shape}")
        return replace(self, data=data, **changes)


@dataclass(frozen=True, eq=False)
class LabelVolume(Volume):
    """uint8 label map: 0 background, 1 LV blood pool, 2 LV myocardium, 3 RV blood pool."""

    label_table: LabelTable = field(default=LABEL_TABLE)

    def __post_init__(self) -> None:
        super().__post_init__()
        what = self.name or "label volume"
        data = self.data
        if data.dtype != np.uint8:
            if not np.issubdtype(data.dtype, np.number):
                raise CardioInputError(what, f"labels must be numeric, got {data.dtype}")
            if np.issubdtype(data.dtype, np.floating):
                if not np.all(np.isfinite(data)):
                    raise CardioInputError(what, "labels contain NaN or infinite values")
                if not np.all(data == np.round(data)):
                    raise CardioInputError(what, "labels contain non-integer values")
            if data.size and (data.min() < 0 or data.max() > 255):
                raise CardioInputError(what, "label values outside 0-255")
            data = data.astype(np.uint8)
        allowed = self.label_table.values
        # With a 0..K table, max() settles validity in one pass; np.unique (the slow path, for
        # the error message) costs ~40 ms on a 3D+t synthetic subject.
        contiguous = sorted(allowed) == list(range(len(allowed)))
        if contiguous and (data.size == 0 or int(data.max()) < len(allowed)):
            unknown = []
        else:
            unknown = sorted(set(np.unique(data).tolist()) - set(allowed))
        if unknown:
            raise CardioInputError(
                what,
                f"unknown label values {unknown}; expected {list(self.label_table.values)}",
            )
        object.__setattr__(self, "data", data)


@dataclass(frozen=True, eq=False)
class ImageVolume(Volume):
    """float32 MR-like image, normalised to [-1, 1], on the same kind of grid as labels."""

    def __post_init__(self) -> None:
        super().__post_init__()
        what = self.name or "image volume"
        if not np.issubdtype(self.data.dtype, np.number):
            raise CardioInputError(what, f"image must be numeric, got {self.data.dtype}")
        data = np.asarray(self.data, dtype=np.float32)
        if not np.all(np.isfinite(data)):
            raise CardioInputError(what, "image contains NaN or infinite intensities")
        object.__setattr__(self, "data", data)
