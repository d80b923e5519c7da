"""Exported meshes open the right way round in 3D Slicer: LPS points and a SPACE=LPS tag.

Slicer reads an untagged mesh as LPS and finds the tag in a VTP's field data, an STL header or
an OBJ comment. Read back here with VTK's own readers, the points, taken to RAS by the tag, lie
on the labelled voxels of the NIfTI as nibabel (RAS affine) places them, and, left in LPS, on the
same voxels as SimpleITK (LPS physical points) places them.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkIOGeometry import vtkOBJReader, vtkSTLReader
from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.nifti import write_label_volume
from cardio_explorer.viewer.surfaces import EXPORT_FORMATS, export_surfaces, extract_surfaces

pytestmark = pytest.mark.gui


def read_mesh(path, fmt: str) -> tuple[np.ndarray, str | None]:
    """Points of a mesh file and the coordinate system its tag names (None: untagged)."""
    reader = {"vtp": vtkXMLPolyDataReader, "stl": vtkSTLReader, "obj": vtkOBJReader}[fmt]()
    reader.SetFileName(str(path))
    reader.Update()
    poly = reader.GetOutput()
    if fmt == "vtp":
        array = poly.GetFieldData().GetAbstractArray("SPACE")
        tag = None if array is None else array.GetValue(0)
    else:
        text = reader.GetHeader() if fmt == "stl" else reader.GetComment()
        tag = next((s for s in ("LPS", "RAS") if f"SPACE={s}" in (text or "")), None)
    return vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64), tag


def to_ras(points: np.ndarray, space: str | None) -> np.ndarray:
    """What Slicer does on reading: an LPS (or untagged) mesh has x and y negated."""
    return points if space == "RAS" else points * np.array([-1.0, -1.0, 1.0])


def on_label(index_xyz: np.ndarray, data_xyz: np.ndarray, label: int) -> np.ndarray:
    """Per point: does one of the 8 voxels around this continuous index hold ``label``?"""
    hits = np.zeros(len(index_xyz), bool)
    shape = np.array(data_xyz.shape)
    for corner in np.ndindex(2, 2, 2):
        voxel = np.floor(index_xyz + 1e-6).astype(int) + np.array(corner)
        inside = np.all((voxel >= 0) & (voxel < shape), axis=1)
        v = voxel[inside]
        hits[np.flatnonzero(inside)] |= data_xyz[v[:, 0], v[:, 1], v[:, 2]] == label
    return hits


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_meshes_are_lps_tagged_and_sit_on_the_nifti_voxels(tmp_path, oblique_heart, fmt):
    nifti = write_label_volume(oblique_heart, tmp_path / "heart.nii.gz")
    image = nib.load(str(nifti))
    data = np.asarray(image.dataobj)  # (x, y, z)
    to_index = np.linalg.inv(image.affine)
    itk = SimpleITK.ReadImage(str(nifti))
    surfaces = extract_surfaces(oblique_heart, smoothing_iterations=0)
    written = export_surfaces(surfaces, tmp_path / "out", fmt)
    for path, label in zip(written, surfaces, strict=True):
        points, space = read_mesh(path, fmt)
        assert space == "LPS", path
        ras = to_ras(points, space)
        index = ras @ to_index[:3, :3].T + to_index[:3, 3]
        assert on_label(index, data, label).all(), path
        # read as RAS (the old, untagged files), almost no point lands on its structure
        wrong = points @ to_index[:3, :3].T + to_index[:3, 3]
        assert on_label(wrong, data, label).mean() < 0.2
        # the file's own LPS points are SimpleITK's physical points of the same voxels
        sample = points[:: max(1, len(points) // 200)]
        itk_index = np.array([itk.TransformPhysicalPointToContinuousIndex(p) for p in sample])
        np.testing.assert_allclose(itk_index, index[:: max(1, len(points) // 200)], atol=1e-3)


def test_ras_can_be_asked_for_and_is_tagged_too(tmp_path, heart):
    surfaces = extract_surfaces(heart)
    for fmt in EXPORT_FORMATS:
        path = export_surfaces(surfaces, tmp_path / fmt, fmt, space="RAS")[0]
        points, space = read_mesh(path, fmt)
        assert space == "RAS"
        lv = next(iter(surfaces.values()))
        np.testing.assert_allclose(
            np.sort(points, axis=0)[[0, -1]],
            np.sort(vtk_to_numpy(lv.GetPoints().GetData()), axis=0)[[0, -1]],
            atol=1e-3,
        )
    with pytest.raises(CardioInputError, match="coordinate system"):
        export_surfaces(surfaces, tmp_path, "vtp", space="XYZ")
