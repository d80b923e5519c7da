"""Phenotypes against analytic shapes: ellipsoid volume, rings of known thickness, EF."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.phenotypes import (
    Phenotypes,
    ejection_fraction,
    lv_mass_g,
    max_wall_thickness_mm,
    measure_phenotypes,
    structure_volume_ml,
    volume_curve,
)
from cardio_explorer.engine.volume import LabelVolume


def _plane_radius(n: int, sy: float, sx: float, shift: tuple[float, float]) -> tuple:
    y = (np.arange(n) + 0.5) * sy - (n / 2 * sy + shift[0])
    x = (np.arange(n) + 0.5) * sx - (n / 2 * sx + shift[1])
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return yy, xx


def ring_volume(
    thickness: float,
    spacing_zyx: tuple[float, float, float],
    inner: float = 22.0,
    n: int = 96,
    nz: int = 4,
    shift: tuple[float, float] = (0.3, -0.4),
) -> LabelVolume:
    """Short-axis stack of identical annuli: cavity radius `inner`, wall `thickness` (mm)."""
    _, sy, sx = spacing_zyx
    yy, xx = _plane_radius(n, sy, sx, shift)
    r = np.hypot(yy, xx)
    plane = np.zeros((n, n), np.uint8)
    plane[r < inner] = Label.LV
    plane[(r >= inner) & (r < inner + thickness)] = Label.MYO
    return LabelVolume.from_array(np.repeat(plane[None], nz, axis=0), spacing_zyx)


def test_ellipsoid_volume_within_2_percent_on_anisotropic_grid() -> None:
    spacing = (2.0, 1.25, 1.5)
    a, b, c = 30.0, 22.0, 26.0  # semi-axes along z, y, x in mm
    z = (np.arange(40) - 19.7) * spacing[0]
    y = (np.arange(48) - 23.6) * spacing[1]
    x = (np.arange(44) - 21.9) * spacing[2]
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    inside = (zz / a) ** 2 + (yy / b) ** 2 + (xx / c) ** 2 <= 1.0
    vol = LabelVolume.from_array(np.where(inside, Label.RV, 0).astype(np.uint8), spacing)
    exact_ml = 4.0 / 3.0 * math.pi * a * b * c / 1000.0
    assert structure_volume_ml(vol, Label.RV) == pytest.approx(exact_ml, rel=0.02)
    assert structure_volume_ml(vol, Label.LV) == 0.0


@pytest.mark.parametrize("thickness", [6.0, 9.0, 12.0, 15.0])
@pytest.mark.parametrize("spacing", [(8.0, 1.5, 1.5), (6.0, 1.5, 1.9)])
def test_ring_wall_thickness_within_one_pixel(thickness: float, spacing: tuple) -> None:
    vol = ring_volume(thickness, spacing)
    measured = max_wall_thickness_mm(vol)
    assert abs(measured - thickness) <= min(spacing[1:]), measured


def test_ring_lv_mass_matches_annulus() -> None:
    spacing = (8.0, 1.5, 1.5)
    vol = ring_volume(9.0, spacing, nz=5)
    annulus_mm2 = math.pi * ((22.0 + 9.0) ** 2 - 22.0**2)
    expected_g = annulus_mm2 * 8.0 * 5 / 1000.0 * 1.05
    assert lv_mass_g(vol) == pytest.approx(expected_g, rel=0.02)


def test_regional_thickening_is_found_and_uniform_wall_is_not_inflated() -> None:
    spacing = (8.0, 1.5, 1.5)
    n = 96
    yy, xx = _plane_radius(n, 1.5, 1.5, (0.0, 0.0))
    r, phi = np.hypot(yy, xx), np.degrees(np.arctan2(yy, xx))
    wall = np.where(np.abs(phi) < 40.0, 15.0, 7.0)  # an 80-degree septal-like bulge
    plane = np.zeros((n, n), np.uint8)
    plane[r < 20.0] = Label.LV
    plane[(r >= 20.0) & (r < 20.0 + wall)] = Label.MYO
    vol = LabelVolume.from_array(np.repeat(plane[None], 3, axis=0), spacing)
    assert max_wall_thickness_mm(vol) == pytest.approx(15.0, abs=1.5)


def test_wall_thickness_skips_slices_without_cavity_or_myocardium() -> None:
    ring = ring_volume(8.0, (8.0, 1.5, 1.5), nz=3)
    # Add an empty slice and an apical cap: a solid myocardial disc without cavity, which must
    # not count as a 60 mm wall.
    cap = np.where(ring.data[0] > 0, Label.MYO, 0).astype(np.uint8)
    data = np.concatenate([np.zeros_like(cap)[None], cap[None], ring.data], axis=0)
    capped = LabelVolume.from_array(data, ring.spacing_zyx)
    assert max_wall_thickness_mm(capped) == pytest.approx(max_wall_thickness_mm(ring), abs=1e-9)
    empty = LabelVolume.from_array(np.zeros((3, 16, 16), np.uint8), (8.0, 1.5, 1.5))
    assert max_wall_thickness_mm(empty) == 0.0


def test_one_thick_edge_slice_does_not_set_the_maximum() -> None:
    spacing = (8.0, 1.5, 1.5)
    thin = ring_volume(8.0, spacing, nz=5).data
    thick = ring_volume(24.0, spacing, inner=14.0, nz=1).data
    edge = LabelVolume.from_array(np.concatenate([thick, thin]), spacing)
    assert max_wall_thickness_mm(edge) == pytest.approx(8.0, abs=1.5)
    assert max_wall_thickness_mm(edge, corroborated=False) == pytest.approx(24.0, abs=1.5)
    # the same thickening on two adjacent slices is real and is kept
    two = LabelVolume.from_array(np.concatenate([thick, thick, thin]), spacing)
    assert max_wall_thickness_mm(two) == pytest.approx(24.0, abs=1.5)


def test_ejection_fraction_known_and_safe_on_empty() -> None:
    assert ejection_fraction(150.0, 60.0) == pytest.approx(60.0)
    assert ejection_fraction(0.0, 0.0) == 0.0
    assert ejection_fraction(0.0, 5.0) == 0.0


def test_measure_phenotypes_on_synthetic_ed_es_pair() -> None:
    spacing = (10.0, 1.5, 1.5)
    voxel_ml = 10.0 * 1.5 * 1.5 / 1000.0
    ed = ring_volume(8.0, spacing, nz=4).data.copy()
    es = ring_volume(8.0, spacing, inner=16.0, nz=4).data.copy()
    ed[:, 2:12, 2:22] = Label.RV  # 200 voxels per slice
    es[:, 2:12, 2:12] = Label.RV  # 100 voxels per slice
    ed_vol = LabelVolume.from_array(ed, spacing)
    es_vol = LabelVolume.from_array(es, spacing)
    ph = measure_phenotypes(ed_vol, es_vol)
    lvedv = np.count_nonzero(ed == Label.LV) * voxel_ml
    lvesv = np.count_nonzero(es == Label.LV) * voxel_ml
    assert ph.lvedv_ml == pytest.approx(lvedv)
    assert ph.lvesv_ml == pytest.approx(lvesv)
    assert ph.lvsv_ml == pytest.approx(lvedv - lvesv)
    assert ph.lvef == pytest.approx(100 * (lvedv - lvesv) / lvedv)
    assert ph.rvedv_ml == pytest.approx(800 * voxel_ml)
    assert ph.rvesv_ml == pytest.approx(400 * voxel_ml)
    assert ph.rvef == pytest.approx(50.0)
    assert ph.lvm_g == pytest.approx(np.count_nonzero(ed == Label.MYO) * voxel_ml * 1.05)
    assert ph.max_wall_mm == pytest.approx(8.0, abs=1.5)
    d = ph.as_dict()
    assert list(d) == [f for f in Phenotypes.__dataclass_fields__]
    assert all(isinstance(v, float) for v in d.values())


def test_measure_phenotypes_rejects_4d_frame() -> None:
    four_d = LabelVolume.from_array(np.zeros((2, 2, 8, 8), np.uint8), (8.0, 1.5, 1.5))
    with pytest.raises(CardioInputError, match="3D"):
        measure_phenotypes(four_d, four_d)
    with pytest.raises(CardioInputError, match="label"):
        structure_volume_ml(four_d.frame(0), 7)


def test_volume_curve_per_frame() -> None:
    data = np.zeros((5, 2, 10, 10), np.uint8)
    for t in range(5):
        data[t, :, : t + 1, :] = Label.LV  # 20 (t + 1) voxels
        data[t, :, 9, :] = Label.MYO  # 20 voxels
    vol = LabelVolume.from_array(data, (2.0, 1.0, 1.0))
    curve = volume_curve(vol)
    np.testing.assert_allclose(curve["lv"], 20 * np.arange(1, 6) * 0.002)
    np.testing.assert_allclose(curve["myo"], np.full(5, 0.04))
    np.testing.assert_allclose(curve["rv"], np.zeros(5))
