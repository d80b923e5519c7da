"""A triangle mesh as plain numpy arrays: what workers hand to the viewer (no VTK here).

Surface extraction (VTK) is in :mod:`cardio_explorer.viewer.surfaces`; this module is what the
Qt-free job layer may import to name and carry meshes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle surface as plain arrays: safe to build on a worker thread and hand over."""

    points: np.ndarray  # (N, 3) float32, world mm
    triangles: np.ndarray  # (M, 3) int32: half the memory of VTK's int64 ids (paths cache many)
    normals: np.ndarray  # (N, 3) float32


def vertex_normals(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (float32) of a triangle mesh."""
    a, b, c = (points[triangles[:, i]] for i in range(3))
    face = np.cross(b - a, c - a)
    normals = np.empty_like(points)
    for axis in range(3):
        normals[:, axis] = np.bincount(
            triangles.ravel(), np.repeat(face[:, axis], 3), minlength=len(points)
        )
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.maximum(length, 1e-12)).astype(np.float32)
