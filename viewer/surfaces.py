"""Label volume -> per-structure surfaces in world millimetres, their export, and 4D sets.

Nothing here touches a render window, so extraction may run in worker threads.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkPoints, vtkSMPTools, vtkStringArray
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D
from vtkmodules.vtkIOGeometry import vtkOBJWriter, vtkSTLWriter
from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write
from cardio_explorer.engine.labels import LABEL_TABLE, Label, LabelTable
from cardio_explorer.engine.labels import STRUCTURES as STRUCTURE_LABELS
from cardio_explorer.engine.volume import LabelVolume
from cardio_explorer.viewer.mesh import Mesh, vertex_normals

# VTK's default SMP backend is sequential; threads roughly halve smoothing time on 2 cores.
vtkSMPTools.SetBackend("STDThread")

STRUCTURES: tuple[int, ...] = tuple(int(v) for v in STRUCTURE_LABELS.values())
EXPORT_FORMATS: tuple[str, ...] = ("vtp", "stl", "obj")
# 3D Slicer reads a mesh without a coordinate tag as LPS (since 4.11) and finds the tag as
# "SPACE=LPS" in a VTK/STL header or an OBJ comment, or a "SPACE" string array in a VTP's field
# data. Files are written in LPS (ITK's and DICOM's physical frame, SimpleITK's too) and tagged.
SPACES: tuple[str, ...] = ("LPS", "RAS")
SPACE_TAG = "SPACE"
_HEADER = "cardio-explorer output. SPACE={space}"
DEFAULT_SMOOTHING = 10  # more shrinks small structures (LV about 4 % at 10 on 128 x 128 x 32)

Surfaces = dict[int, vtkPolyData]


def _label_image(labels: np.ndarray) -> vtkImageData:
    """Label array (z, y, x) as vtkImageData in index space (VTK's i, j, k = NIfTI's x, y, z)."""
    nz, ny, nx = labels.shape
    image = vtkImageData()
    image.SetDimensions(nx, ny, nz)
    scalars = numpy_to_vtk(np.ascontiguousarray(labels, dtype=np.uint8).ravel(), deep=1)
    scalars.SetName("labels")
    image.GetPointData().SetScalars(scalars)
    return image


def _polydata(
    points: np.ndarray, triangles: np.ndarray, normals: np.ndarray | None = None
) -> vtkPolyData:
    """vtkPolyData of float32 points (N, 3) and triangles (M, 3) with vertex normals."""
    poly = vtkPolyData()
    vtk_points = vtkPoints()
    vtk_points.SetData(numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float32), deep=1))
    poly.SetPoints(vtk_points)
    cells = vtkCellArray()
    offsets = np.arange(0, 3 * len(triangles) + 1, 3, dtype=np.int64)
    cells.SetData(
        numpy_to_vtkIdTypeArray(offsets, deep=1),
        numpy_to_vtkIdTypeArray(np.ascontiguousarray(triangles, dtype=np.int64).ravel(), deep=1),
    )
    poly.SetPolys(cells)
    if len(triangles):
        if normals is None:
            normals = vertex_normals(points, triangles)
        vtk_normals = numpy_to_vtk(np.ascontiguousarray(normals, dtype=np.float32), deep=1)
        vtk_normals.SetName("Normals")
        poly.GetPointData().SetNormals(vtk_normals)
    return poly


# vtkPolyData of each Mesh, built once and kept while the Mesh lives (a morph step drawn twice,
# a path frame scrubbed back to, a sequence frame played again reuse it). GUI thread only.
_BUILT: weakref.WeakKeyDictionary[Mesh, vtkPolyData] = weakref.WeakKeyDictionary()


def surfaces_from_meshes(meshes: Mapping[int, Mesh]) -> Surfaces:
    """vtkPolyData per structure from numpy meshes, each built once (GUI thread: VTK objects
    stay there)."""
    surfaces = {}
    for k, m in meshes.items():
        poly = _BUILT.get(m)
        if poly is None:
            poly = _BUILT[m] = _polydata(m.points, m.triangles, m.normals)
        surfaces[k] = poly
    return surfaces


def extract_surfaces(
    labels: LabelVolume,
    smoothing_iterations: int = DEFAULT_SMOOTHING,
    structures: Sequence[int] = STRUCTURES,
) -> Surfaces:
    """Closed triangle surface of each structure of a 3D label volume, in world mm (RAS+).

    See :func:`extract_meshes`; this one returns vtkPolyData.
    """
    return surfaces_from_meshes(extract_meshes(labels, smoothing_iterations, structures))


def extract_meshes(
    labels: LabelVolume,
    smoothing_iterations: int = DEFAULT_SMOOTHING,
    structures: Sequence[int] = STRUCTURES,
) -> dict[int, Mesh]:
    """Closed triangle mesh of each structure of a 3D label volume, in world mm (RAS+).

    One SurfaceNets pass shares the interfaces between structures (LV/MYO, MYO/RV), so
    neighbouring surfaces fit without gaps. Normals point out of each structure whatever the
    handedness of the affine. A structure absent from the volume gets an empty polydata.
    """
    if labels.is_4d:
        raise CardioInputError(labels.name or "label volume", "expected one 3D frame, got 3D+t")
    if smoothing_iterations < 0:
        raise CardioInputError("smoothing_iterations", f"must be >= 0, got {smoothing_iterations}")
    nets = vtkSurfaceNets3D()
    nets.SetInputData(_label_image(labels.data))
    # always all structures: smoothing then treats the shared interfaces the same whatever
    # subset is asked for, so a structure's surface never depends on which others are shown
    for i, value in enumerate(STRUCTURES):
        nets.SetLabel(i, value)
    nets.SetBackgroundLabel(int(Label.BACKGROUND))
    nets.SetOutputMeshTypeToTriangles()
    if smoothing_iterations:
        nets.SetNumberOfIterations(int(smoothing_iterations))
    else:
        nets.SmoothingOff()
    nets.Update()
    net = nets.GetOutput()

    meshes: dict[int, Mesh] = {}
    if net.GetNumberOfCells() == 0:
        empty = np.zeros((0, 3), np.float32)
        return {int(s): Mesh(empty, np.zeros((0, 3), np.int32), empty) for s in structures}
    index_points = vtk_to_numpy(net.GetPoints().GetData()).astype(np.float64)
    world = index_points @ labels.affine[:3, :3].T + labels.affine[:3, 3]
    triangles = vtk_to_numpy(net.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    # cell winding points from the first boundary label to the second (background second)
    boundary = vtk_to_numpy(net.GetCellData().GetArray("BoundaryLabels")).astype(np.int64)
    mirrored = np.linalg.det(labels.affine[:3, :3]) < 0
    for structure in structures:
        outward = boundary[:, 0] == structure
        inward = boundary[:, 1] == structure
        tris = np.concatenate([triangles[outward], triangles[inward][:, ::-1]])
        if mirrored:
            tris = tris[:, ::-1]
        used = np.zeros(len(world), dtype=bool)
        used[tris] = True
        new_index = np.cumsum(used) - 1
        points, tris = world[used].astype(np.float32), new_index[tris].astype(np.int32)
        meshes[int(structure)] = Mesh(points, tris, vertex_normals(points, tris))
    return meshes


def _writer(fmt: str, space: str):
    if fmt == "vtp":
        writer = vtkXMLPolyDataWriter()
        writer.SetDataModeToBinary()
        return writer
    if fmt == "stl":
        writer = vtkSTLWriter()
        writer.SetFileTypeToBinary()
        writer.SetHeader(_HEADER.format(space=space))
        return writer
    return vtkOBJWriter()


def in_space(poly: vtkPolyData, space: str) -> vtkPolyData:
    """A copy of a RAS surface in ``space`` (LPS: x and y negated, a rotation: winding kept),
    tagged with a ``SPACE`` field-data string the way 3D Slicer tags its own files."""
    out = vtkPolyData()
    out.DeepCopy(poly)
    if space == "LPS" and out.GetNumberOfPoints():
        flip = np.array([-1.0, -1.0, 1.0], dtype=np.float32)
        points = vtk_to_numpy(out.GetPoints().GetData())
        out.GetPoints().SetData(numpy_to_vtk(np.ascontiguousarray(points * flip), deep=1))
        normals = out.GetPointData().GetNormals()
        if normals is not None:
            flipped = numpy_to_vtk(np.ascontiguousarray(vtk_to_numpy(normals) * flip), deep=1)
            flipped.SetName(normals.GetName())
            out.GetPointData().SetNormals(flipped)
    tag = vtkStringArray()
    tag.SetName(SPACE_TAG)
    tag.InsertNextValue(space)
    out.GetFieldData().AddArray(tag)
    return out


def _tag_obj(path: Path, space: str) -> None:
    """Put the coordinate tag in the OBJ's first comment (VTK's OBJ writer takes none)."""
    text = path.read_text(encoding="utf-8")
    path.write_text(f"# {_HEADER.format(space=space)}\n{text}", encoding="utf-8")


def export_surfaces(
    surfaces: Mapping[int, vtkPolyData],
    folder: str | os.PathLike[str],
    fmt: str = "vtp",
    prefix: str = "",
    label_table: LabelTable = LABEL_TABLE,
    space: str = "LPS",
) -> list[Path]:
    """Write one file per structure (``<prefix>lv.vtp`` ...) into folder, atomically; the paths.

    The surfaces are RAS world mm (as from :func:`extract_surfaces`); files hold them in
    ``space`` (default LPS) and say so (``SPACE=LPS``), so 3D Slicer opens them the right way
    round. Each file is written to a temporary name, then renamed.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise CardioInputError("format", f"unknown surface format {fmt!r}; use {EXPORT_FORMATS}")
    if space not in SPACES:
        raise CardioInputError("space", f"unknown coordinate system {space!r}; use {SPACES}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CardioInputError(str(folder), "is a file, expected a folder for surface export")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for value, poly in surfaces.items():
        target = folder / f"{prefix}{label_table.name(int(value))}.{fmt}"

        def write(temp: Path, poly: vtkPolyData = poly, target: Path = target) -> None:
            writer = _writer(fmt, space)
            writer.SetFileName(str(temp))
            writer.SetInputData(in_space(poly, space))
            if writer.Write() != 1:
                raise CardioInputError(str(target), "VTK could not write the surface")
            if fmt == "obj":
                _tag_obj(temp, space)

        atomic_write(target, write)
        written.append(target)
    return written


@dataclass(frozen=True, eq=False)
class SurfaceSet:
    """Surfaces of every frame of a 3D+t label sequence, extracted once for cheap playback.

    Frames are numpy meshes (any thread); ``set[t]`` builds frame t's vtkPolyData once, so
    index it on the GUI thread, where VTK objects live.
    """

    meshes: tuple[dict[int, Mesh], ...]
    frame_duration_ms: float | None = None
    _built: dict[int, Surfaces] = field(default_factory=dict, repr=False)

    @classmethod
    def extract(
        cls,
        sequence: LabelVolume,
        smoothing_iterations: int = DEFAULT_SMOOTHING,
        structures: Sequence[int] = STRUCTURES,
        on_frame: Callable[[int, int], None] | None = None,
    ) -> SurfaceSet:
        """Extract all frames (worker-thread safe); ``on_frame(done, total)`` after each frame.

        To abandon a superseded request, let ``on_frame`` raise: the exception propagates.
        """
        frames = []
        for t in range(sequence.n_frames):
            frames.append(extract_meshes(sequence.frame(t), smoothing_iterations, structures))
            if on_frame is not None:
                on_frame(t + 1, sequence.n_frames)
        return cls(tuple(frames), sequence.frame_duration_ms)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return len(self.meshes)

    @property
    def frames(self) -> tuple[Surfaces, ...]:
        """vtkPolyData of every frame (built on first use)."""
        return tuple(self[t] for t in range(len(self.meshes)))

    def __len__(self) -> int:
        return len(self.meshes)

    def __getitem__(self, t: int) -> Surfaces:
        t = range(len(self.meshes))[t]  # negative indices, and IndexError past the end
        if t not in self._built:
            self._built[t] = surfaces_from_meshes(self.meshes[t])
        return self._built[t]

    def __iter__(self) -> Iterator[Surfaces]:
        return iter(self.frames)

    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """World bounds (xmin, xmax, ymin, ymax, zmin, zmax) over all frames and structures."""
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for surfaces in self.frames:
            for poly in surfaces.values():
                if poly.GetNumberOfPoints():
                    b = np.asarray(poly.GetBounds())
                    lo, hi = np.minimum(lo, b[0::2]), np.maximum(hi, b[1::2])
        return (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
