"""Surface extraction: world coordinates, closed outward surfaces, export, 4D sets, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkIOGeometry import vtkOBJReader, vtkSTLReader
from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.volume import LabelVolume
from cardio_explorer.viewer.surfaces import (
    STRUCTURES,
    SurfaceSet,
    export_surfaces,
    extract_surfaces,
)

pytestmark = pytest.mark.gui


def _points(poly) -> np.ndarray:
    return vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64)


def _triangles(poly) -> np.ndarray:
    return vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3)


def _signed_volume_mm3(poly) -> float:
    p, t = _points(poly), _triangles(poly)
    a, b, c = p[t[:, 0]], p[t[:, 1]], p[t[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


@pytest.fixture(params=["axis_aligned", "oblique_mirrored"])
def volume(request, heart, oblique_heart) -> LabelVolume:
    return heart if request.param == "axis_aligned" else oblique_heart


def test_unsmoothed_points_sit_between_voxel_centres_in_world_mm(volume):
    surfaces = extract_surfaces(volume, smoothing_iterations=0)
    inverse = np.linalg.inv(volume.affine)
    for label in (Label.LV, Label.MYO, Label.RV):
        world = _points(surfaces[label])
        index_xyz = world @ inverse[:3, :3].T + inverse[:3, 3]
        # surface nets put each vertex at the centre of a cell of voxel centres
        np.testing.assert_allclose(index_xyz - np.floor(index_xyz), 0.5, atol=1e-3)
        voxels_zyx = np.argwhere(volume.data == label)
        np.testing.assert_allclose(index_xyz.min(0), voxels_zyx.min(0)[::-1] - 0.5, atol=1e-3)
        np.testing.assert_allclose(index_xyz.max(0), voxels_zyx.max(0)[::-1] + 0.5, atol=1e-3)


def test_surfaces_are_closed_and_point_outwards(volume):
    voxel_mm3 = volume.voxel_volume_ml * 1000.0
    unsmoothed = extract_surfaces(volume, smoothing_iterations=0)
    smoothed = extract_surfaces(volume, smoothing_iterations=10)
    for label in (Label.LV, Label.MYO, Label.RV):
        expected = np.count_nonzero(volume.data == label) * voxel_mm3
        # positive = outward normals; exact for the voxel-faced surface of a closed region
        assert _signed_volume_mm3(unsmoothed[label]) == pytest.approx(expected, rel=1e-4)
        assert _signed_volume_mm3(smoothed[label]) == pytest.approx(expected, rel=0.2)
        normals = vtk_to_numpy(smoothed[label].GetPointData().GetNormals())
        np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-4)


def test_missing_structure_gives_empty_surface_and_bad_input_is_refused(heart):
    no_rv = heart.with_data(np.where(heart.data == Label.RV, 0, heart.data).astype(np.uint8))
    surfaces = extract_surfaces(no_rv, structures=(Label.LV, Label.RV))
    assert set(surfaces) == {Label.LV, Label.RV}
    assert surfaces[Label.RV].GetNumberOfPoints() == 0
    assert surfaces[Label.LV].GetNumberOfPoints() > 100
    empty = extract_surfaces(heart.with_data(np.zeros_like(heart.data)))
    assert all(p.GetNumberOfCells() == 0 for p in empty.values())
    four_d = LabelVolume(np.stack([heart.data] * 2), heart.affine)
    with pytest.raises(CardioInputError, match="3D\\+t"):
        extract_surfaces(four_d)
    with pytest.raises(CardioInputError, match="smoothing_iterations"):
        extract_surfaces(heart, smoothing_iterations=-1)


@pytest.mark.parametrize(
    ("fmt", "reader_class"),
    [("vtp", vtkXMLPolyDataReader), ("stl", vtkSTLReader), ("obj", vtkOBJReader)],
)
def test_export_reads_back_with_same_geometry(tmp_path, oblique_heart, fmt, reader_class):
    surfaces = extract_surfaces(oblique_heart)
    written = export_surfaces(surfaces, tmp_path / "out", fmt=fmt, prefix="case1_")
    assert [p.name for p in written] == [f"case1_{n}.{fmt}" for n in ("lv", "myo", "rv")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)
    for path, (label, poly) in zip(written, surfaces.items(), strict=True):
        reader = reader_class()
        reader.SetFileName(str(path))
        reader.Update()
        back = reader.GetOutput()
        assert back.GetNumberOfPoints() == poly.GetNumberOfPoints(), label
        assert back.GetNumberOfCells() == poly.GetNumberOfCells(), label
        # written in LPS (x and y negated; see test_surfaces_space.py)
        x0, x1, y0, y1, z0, z1 = poly.GetBounds()
        np.testing.assert_allclose(back.GetBounds(), (-x1, -x0, -y1, -y0, z0, z1), atol=1e-3)


def test_export_refuses_unknown_format_and_file_as_folder(tmp_path, heart):
    surfaces = extract_surfaces(heart)
    with pytest.raises(CardioInputError, match="unknown surface format"):
        export_surfaces(surfaces, tmp_path, fmt="ply")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CardioInputError, match="is a file"):
        export_surfaces(surfaces, tmp_path / "file")


def test_surface_set_extracts_every_frame_once(heart):
    frames = np.stack([heart.data, np.roll(heart.data, 3, axis=2), heart.data])
    sequence = LabelVolume(frames, heart.affine, frame_duration_ms=40.0)
    progress: list[tuple[int, int]] = []
    surface_set = SurfaceSet.extract(sequence, on_frame=lambda d, n: progress.append((d, n)))
    assert len(surface_set) == surface_set.n_frames == 3
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert surface_set.frame_duration_ms == 40.0
    lv0 = surface_set[0][Label.LV].GetBounds()
    lv1 = surface_set[1][Label.LV].GetBounds()
    assert lv1[0] == pytest.approx(lv0[0] + 3 * heart.spacing_xyz[0], abs=1e-3)
    bounds = surface_set.bounds()
    assert bounds[0] <= lv0[0]
    assert bounds[1] >= lv1[1]


def test_extraction_in_worker_threads_matches_main_thread(heart):
    reference = extract_surfaces(heart)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: extract_surfaces(heart), range(4)))
    for result in results:
        for label, poly in reference.items():
            np.testing.assert_array_equal(_points(result[label]), _points(poly))


def test_each_numpy_mesh_becomes_vtk_once_while_it_lives():
    import gc

    from cardio_explorer.viewer import surfaces as surfaces_module
    from cardio_explorer.viewer.surfaces import extract_meshes, surfaces_from_meshes

    data = np.zeros((8, 20, 20), np.uint8)
    data[2:6, 5:15, 5:15] = int(Label.MYO)
    data[3:5, 8:12, 8:12] = int(Label.LV)
    meshes = extract_meshes(LabelVolume.from_array(data, (2.0, 1.0, 1.0)))
    first = surfaces_from_meshes(meshes)
    again = surfaces_from_meshes(dict(meshes))
    assert all(again[k] is first[k] for k in meshes)  # the same Mesh: the same vtkPolyData
    assert first[int(Label.LV)].GetNumberOfPoints() == len(meshes[int(Label.LV)].points)
    other = extract_meshes(LabelVolume.from_array(data, (2.0, 1.0, 1.0)))
    assert surfaces_from_meshes(other)[int(Label.LV)] is not first[int(Label.LV)]
    held = len(surfaces_module._BUILT)
    del meshes, other, first, again
    gc.collect()
    assert len(surfaces_module._BUILT) <= held - 2 * len(STRUCTURES)  # freed with their meshes
