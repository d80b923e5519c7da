"""Synthetic cohort: anatomy, motion, images, determinism and the ACDC layout on disk."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from cardio_explorer.engine.cohort.build import generate_cohort
from cardio_explorer.engine.cohort.generate import (
    CohortConfig,
    SyntheticSubject,
    assign_groups,
    subject_seeds,
    synthesize_subject,
)
from cardio_explorer.engine.cohort.grid import PATIENT_FROM_HEART
from cardio_explorer.engine.cohort.motion import ejected_fraction_curve
from cardio_explorer.engine.cohort.writer import manifest_row, write_subject
from cardio_explorer.engine.io.acdc import read_acdc_subject, read_info_cfg
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.diagnosis import meets_group_rule
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes

SMALL = CohortConfig(n=5, seed=11)  # one subject per group


def _by_group(config: CohortConfig) -> dict[str, SyntheticSubject]:
    groups = assign_groups(config)
    seeds = subject_seeds(config)
    return {
        g: synthesize_subject(f"patient{i + 1:03d}", g, seeds[i], config)
        for i, g in enumerate(groups)
    }


@pytest.fixture(scope="module")
def subjects() -> dict[str, SyntheticSubject]:
    """One in-memory subject (with images) per group."""
    return _by_group(SMALL)


@pytest.fixture(scope="module")
def written(tmp_path_factory, subjects):
    """Two of them (ARV checks the 'RV' group name) written in the ACDC layout, with rows."""
    out = tmp_path_factory.mktemp("cohort")
    ordered = sorted((subjects["ARV"], subjects["MINF"]), key=lambda s: s.subject_id)
    rows = []
    for subject in ordered:
        write_subject(subject, out)
        rows.append(manifest_row(subject))
    return out, rows


# anatomy and motion ---------------------------------------------------------------------------
def test_volumes_hit_the_targets_to_the_voxel(subjects):
    for s in subjects.values():
        vox = s.labels.voxel_volume_ml
        p, t = s.phenotypes, s.targets
        assert abs(p.lvedv_ml - t.lvedv_ml) <= vox
        assert abs(p.lvesv_ml - t.lvesv_ml) <= vox
        assert abs(p.rvedv_ml - t.rvedv_ml) <= vox
        assert abs(p.rvesv_ml - t.rvesv_ml) <= vox
        assert abs(p.lvm_g - t.lvm_g) <= 1.05 * vox
        # The wall is fitted by its regional profile; a heavy wall on a small cavity cannot
        # be thinner than its mass allows, so only the lower side is tight.
        assert p.max_wall_mm > t.max_wall_mm - 1.0


def test_myocardial_volume_conserved_within_5_percent(subjects):
    for s in subjects.values():
        myo = s.myo_volume_ml
        assert myo.min() > 0.95 * myo[0], s.group
        assert myo.max() < 1.05 * myo[0], s.group


def test_es_frame_at_35_to_40_percent_with_the_smallest_cavities(subjects):
    for s in subjects.values():
        n = s.labels.n_frames
        assert n == 20
        assert s.ed_frame == 0
        assert 0.35 <= s.es_frame / n <= 0.40
        counts = s.labels.data.reshape(n, -1)
        lv = (counts == Label.LV).sum(axis=1)
        rv = (counts == Label.RV).sum(axis=1)
        assert int(np.argmin(lv)) == s.es_frame
        assert int(np.argmax(lv)) == 0
        assert int(np.argmin(rv)) == s.es_frame
        # Filling after ES: rapid first, then the atrial kick completes it.
        assert lv[s.es_frame + 3] > lv[s.es_frame] + 0.5 * (lv[0] - lv[s.es_frame])
        assert lv[-1] > lv[-3]


def test_volume_curve_shape():
    for es in (7, 8):
        f = ejected_fraction_curve(20, es)
        assert f[0] == 0.0
        assert f[es] == 1.0
        assert np.all(np.diff(f[: es + 1]) > 0)
        assert np.all(np.diff(f[es:]) < 0)
        assert f[es - 1] < 0.97
        assert f[es + 1] < 0.97


def _dense_subject(group: str, seed: int):
    """One labels-only subject of ``group`` on a small dense grid (32 x 64 x 64 at 4, 2.5 mm)."""
    config = CohortConfig(
        n=1,
        seed=seed,
        geometry="dense",
        dense_shape=(32, 64, 64),
        dense_spacing=(4.0, 2.5, 2.5),
        images=False,
        groups={group: 1.0},
    )
    return synthesize_subject("p", group, subject_seeds(config)[0], config)


def test_base_descends_towards_the_apex_in_systole():
    s = _dense_subject("NOR", seed=3)
    heart = np.isin(s.labels.data, (Label.LV, Label.MYO))
    slices = [np.flatnonzero(heart[t].any(axis=(1, 2))) for t in (0, s.es_frame)]
    dz = s.labels.spacing_zyx[0]
    length_ed = (slices[0][-1] - slices[0][0] + 1) * dz
    descent = (slices[1][0] - slices[0][0]) * dz
    assert 0.06 * length_ed <= descent <= 0.2 * length_ed
    assert slices[1][-1] == slices[0][-1]  # the apex stays put
    assert s.states[s.es_frame].descent_mm > 0.09 * s.shape.lv_length_mm


def test_dense_grid_keeps_a_dilated_heart_inside():
    s = _dense_subject("ARV", seed=8)
    heart = s.labels.data > 0
    assert s.targets.rvedv_ml > 150
    for edge in (heart[:, :, 0], heart[:, :, -1], heart[:, :, :, 0], heart[:, :, :, -1]):
        assert not edge.any()
    assert not heart[:, -1].any()  # the apex stays above the last slice
    assert abs(s.phenotypes.rvedv_ml - s.targets.rvedv_ml) <= s.labels.voxel_volume_ml


def _chord_mm(plane: np.ndarray, centre: np.ndarray, direction: float, pixel: float) -> float:
    """Myocardium crossed by a ray from the cavity centre (mm), averaged over +-15 degrees."""
    chords = []
    for angle in direction + np.radians(np.linspace(-15, 15, 7)):
        r = np.arange(0.0, 80.0 / pixel, 0.25)
        coords = np.stack([centre[0] + r * np.sin(angle), centre[1] + r * np.cos(angle)])
        on_ray = ndi.map_coordinates((plane == Label.MYO).astype(float), coords, order=0)
        chords.append(on_ray.sum() * 0.25 * pixel)
    return float(np.mean(chords))


def _septal_and_lateral(s: SyntheticSubject, frame: int = 0) -> list[tuple[float, float]]:
    out = []
    pixel = s.labels.spacing_zyx[1]
    data = s.labels.data[frame]
    for plane in data:
        if (plane == Label.LV).sum() < 50 or (plane == Label.RV).sum() < 50:
            continue
        lv = np.array(ndi.center_of_mass(plane == Label.LV))
        rv = np.array(ndi.center_of_mass(plane == Label.RV))
        septal = math.atan2(*(rv - lv))
        out.append(
            (_chord_mm(plane, lv, septal, pixel), _chord_mm(plane, lv, septal + math.pi, pixel))
        )
    return out


def test_hcm_septum_is_thicker_than_the_lateral_wall(subjects):
    hcm = _septal_and_lateral(subjects["HCM"])
    assert max(sep / lat for sep, lat in hcm) > 1.2
    assert np.median([sep for sep, _ in hcm]) > np.median([lat for _, lat in hcm])
    assert subjects["HCM"].phenotypes.max_wall_mm > subjects["NOR"].phenotypes.max_wall_mm


def _angular_thickness(s: SyntheticSubject, frame: int, z: int, n_rays: int = 72) -> np.ndarray:
    plane = s.labels.data[frame, z]
    lv = np.array(ndi.center_of_mass(plane == Label.LV))
    pixel = s.labels.spacing_zyx[1]
    angles = np.linspace(0, 2 * np.pi, n_rays, endpoint=False)
    return np.array([_chord_mm(plane, lv, a, pixel) for a in angles])


def test_minf_has_a_thinned_akinetic_sector(subjects):
    s = subjects["MINF"]
    inf = s.shape.infarct
    n = s.labels.n_frames
    lv = (s.labels.data == Label.LV).reshape(n, s.labels.spatial_shape[0], -1).sum(axis=2)
    # Mid-scar slice: the one with the most end-systolic cavity inside the scar depth range.
    # depth along the heart frame's long axis (the files place that frame in the patient)
    heart_affine = np.linalg.inv(PATIENT_FROM_HEART) @ s.labels.affine
    # The image axes are the heart frame's turned by the in-plane planning angle (the affine
    # turns them back): the scar's direction in the image plane.
    inplane = np.arctan2(-heart_affine[1, 0], heart_affine[0, 0])
    world_angle = s.shape.septum_angle + inplane + inf.angle
    depth = np.arange(lv.shape[1]) * s.labels.spacing_zyx[0] + heart_affine[2, 3]
    zn = depth / s.shape.lv_length_mm
    candidates = np.flatnonzero((zn > inf.z_range[0] + 0.1) & (zn < inf.z_range[1] - 0.1))
    z = int(candidates[np.argmax(lv[s.es_frame, candidates])])
    ed = _angular_thickness(s, 0, z)
    es = _angular_thickness(s, s.es_frame, z)
    angles = np.linspace(0, 2 * np.pi, ed.size, endpoint=False)
    # atan2(row, col) of the ray is the world angle (diagonal affine, positive spacing).
    scar = np.abs((angles - world_angle + np.pi) % (2 * np.pi) - np.pi) < 0.3
    remote = np.abs((angles - world_angle + np.pi) % (2 * np.pi) - np.pi) > 2.0
    assert ed[scar].mean() < 0.75 * ed[remote].mean()
    thickening = (es - ed) / ed
    assert thickening[scar].mean() < 0.5 * thickening[remote].mean()


def test_every_subject_meets_its_group_rule(subjects):
    for group, s in subjects.items():
        assert meets_group_rule(group, s.phenotypes, s.conditions), group


def test_same_seed_same_subject_any_worker_count(tmp_path):
    config = CohortConfig(n=3, seed=5, images=False)
    a = generate_cohort(config, tmp_path / "a", workers=1)
    b = generate_cohort(config, tmp_path / "b", workers=2)
    assert a.rows == b.rows
    for row in a.rows:
        sid = row["subject"]
        data = [
            np.asarray(nib.load(tmp_path / x / sid / f"{sid}_4d_gt.nii.gz").dataobj)
            for x in ("a", "b")
        ]
        assert np.array_equal(*data)
    first = CohortConfig(n=3, seed=6, images=False)
    other = synthesize_subject(
        a.rows[0]["subject"], a.rows[0]["group"], subject_seeds(first)[0], first
    )
    assert other.phenotypes.lvedv_ml != a.rows[0]["lvedv_ml"]


def test_images_do_not_change_the_labels(subjects):
    s = subjects["DCM"]
    again = synthesize_subject(
        s.subject_id,
        "DCM",
        subject_seeds(SMALL)[assign_groups(SMALL).index("DCM")],
        CohortConfig(n=5, seed=11, images=False),
    )
    assert np.array_equal(again.labels.data, s.labels.data)
    assert again.phenotypes == s.phenotypes


def test_sax_geometry_is_acdc_like(subjects):
    for s in subjects.values():
        dz, dy, dx = s.labels.spacing_zyx
        nz, ny, nx = s.labels.spatial_shape
        assert dy == pytest.approx(dx)
        assert 1.3 <= dx <= 1.7
        assert 5.0 <= dz <= 10.0
        assert 8 <= nz <= 14
        assert 150 <= ny <= 176
        assert 150 <= nx <= 176
        # The whole heart is inside the stack and away from the in-plane border.
        heart = s.labels.data[0] > 0
        assert not heart[:, :3].any()
        assert not heart[:, -3:].any()
        assert not heart[:, :, :3].any()
        assert not heart[:, :, -3:].any()
        assert not heart[-1].any() or heart[-1].sum() < heart.sum() * 0.02


def test_misalignment_shifts_slices():
    config = CohortConfig(n=1, seed=2, images=False, misalignment_mm=3.0, groups={"NOR": 1.0})
    s = synthesize_subject("p", "NOR", subject_seeds(config)[0], config)
    flat = CohortConfig(n=1, seed=2, images=False, groups={"NOR": 1.0})
    f = synthesize_subject("p", "NOR", subject_seeds(flat)[0], flat)
    centres = [ndi.center_of_mass(p == Label.LV) for p in s.labels.data[0] if (p == 1).any()]
    straight = [ndi.center_of_mass(p == Label.LV) for p in f.labels.data[0] if (p == 1).any()]
    jitter = np.std(np.diff(np.array(centres), axis=0))
    assert jitter > 1.5 * max(np.std(np.diff(np.array(straight), axis=0)), 0.3)


# images -------------------------------------------------------------------------------------
def test_images_are_normalised_and_mr_like(subjects):
    for s in subjects.values():
        img, lab = s.images.data, s.labels.data
        assert img.dtype == np.float32
        assert img.shape == lab.shape
        assert img.min() >= -1.0
        assert img.max() <= 1.0
        blood = np.median(img[lab == Label.LV])
        myo = np.median(img[lab == Label.MYO])
        rv = np.median(img[lab == Label.RV])
        assert blood > myo + 0.5
        assert rv > myo + 0.4
        background = np.median(img[lab == 0])
        assert blood > background


def test_papillary_muscles_are_dark_spots_inside_the_labelled_cavity(subjects):
    s = subjects["NOR"]
    img, lab = s.images.data[0], s.labels.data[0]
    blood = np.median(img[lab == Label.LV])
    myo = np.median(img[lab == Label.MYO])
    cavity = lab == Label.LV
    dark = cavity & (img < (blood + myo) / 2)
    assert dark.sum() > 0.03 * cavity.sum()
    # Dark cavity voxels form blobs inside the cavity, not just a rim along the wall.
    interior = ndi.binary_erosion(cavity, structure=np.ones((1, 3, 3)), iterations=2)
    assert (dark & interior).sum() > 20


# on disk -------------------------------------------------------------------------------------
def test_acdc_layout_and_info_cfg(written):
    out, rows = written
    assert {r["group"] for r in rows} == {"ARV", "MINF"}
    assert all(len(r["subject"]) == 10 and r["subject"].startswith("patient") for r in rows)
    for row in rows:
        sid = row["subject"]
        folder = out / sid
        info = read_info_cfg(folder / "Info.cfg")
        assert info["ED"] == 1
        assert info["NbFrame"] == 20
        assert info["ES"] == row["es_frame"]
        assert 8 <= info["ES"] <= 9
        assert info["Group"] == {"ARV": "RV"}.get(row["group"], row["group"])
        assert info["Sex"] in ("F", "M")
        assert 18 <= info["Age"] <= 80
        assert info["Height"] == row["height"]
        assert info["SBP"] == row["sbp"]
        names = {p.name for p in folder.iterdir()}
        es = info["ES"]
        assert names == {
            "Info.cfg",
            f"{sid}_frame01.nii.gz",
            f"{sid}_frame01_gt.nii.gz",
            f"{sid}_frame{es:02d}.nii.gz",
            f"{sid}_frame{es:02d}_gt.nii.gz",
            f"{sid}_4d.nii.gz",
            f"{sid}_4d_gt.nii.gz",
        }
        four_d = nib.load(folder / f"{sid}_4d.nii.gz")
        assert four_d.shape[3] == 20
        assert four_d.header.get_zooms()[3] > 10.0


def test_labels_on_disk_use_acdc_values(written, subjects):
    out, rows = written
    row = rows[0]
    sid = row["subject"]
    on_disk = np.asarray(nib.load(out / sid / f"{sid}_frame01_gt.nii.gz").dataobj)
    assert on_disk.dtype == np.uint8
    assert set(np.unique(on_disk)) == {0, 1, 2, 3}
    vox = float(np.prod(nib.load(out / sid / f"{sid}_frame01_gt.nii.gz").header.get_zooms()))
    assert (on_disk == 3).sum() * vox / 1000 == pytest.approx(row["lvedv_ml"], abs=0.01)
    assert (on_disk == 1).sum() * vox / 1000 == pytest.approx(row["rvedv_ml"], abs=0.01)


def test_manifest_phenotypes_are_measured_on_the_written_files(written):
    out, rows = written
    for row in rows:
        subject = read_acdc_subject(out / row["subject"])
        measured = measure_phenotypes(subject.ed_labels, subject.es_labels).as_dict()
        for key, value in measured.items():
            assert row[key] == pytest.approx(value, abs=2e-3), key
        assert subject.group == row["group"]
        assert subject.conditions is not None
        assert subject.conditions.sex == row["sex"]


@pytest.mark.parametrize("workers", [1, 2])
def test_existing_folder_is_refused_and_failures_leave_nothing(tmp_path, monkeypatch, workers):
    from cardio_explorer.engine.cohort import build
    from cardio_explorer.engine.errors import CardioInputError

    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CardioInputError, match="not empty"):
        generate_cohort(CohortConfig(n=1, images=False), out)
    assert (out / "keep.txt").read_text() == "mine"

    def broken(subject, folder):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "write_subject", broken)
    with pytest.raises(RuntimeError):
        generate_cohort(CohortConfig(n=2, images=False), tmp_path / "new", workers=workers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
