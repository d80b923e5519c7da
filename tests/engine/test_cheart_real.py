"""CHeart on real hearts: one anatomical frame on the model grid for cohort and real hearts,
the ES phase and conditions of a real source, the completion figures, and LV enclosure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cardio_explorer.app.cli import main
from cardio_explorer.engine.cheart.config import TINY
from cardio_explorer.engine.cheart.data import to_model_grid
from cardio_explorer.engine.cheart.model import load_model
from cardio_explorer.engine.cheart.motion import MotionBasis, enclose_lv
from cardio_explorer.engine.cheart.network import CHeartNet, save_cheart
from cardio_explorer.engine.cheart.real import (
    DEFAULT_ES_PHASE,
    complete_real,
    es_phase,
    filled_conditions,
)
from cardio_explorer.engine.cheart.toy import random_model
from cardio_explorer.engine.cheart.warm_start import warm_start
from cardio_explorer.engine.cohort.build import generate_cohort
from cardio_explorer.engine.cohort.generate import CohortConfig
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.frame import (
    TARGET_ANGLE_DEG,
    apex_first,
    lv_rv_angle,
    scanner_oriented,
)
from cardio_explorer.engine.io.cohort import read_cohort
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.engine.metrics.topology import lv_exposed_fraction
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume

GRID, SPACING = (32, 64, 64), (4.0, 2.5, 2.5)  # the bundled model's grid


def _pair(subject: Subject) -> LabelVolume:
    ed, es = subject.ed_labels, subject.es_labels
    return LabelVolume(data=np.stack([ed.data, es.data]), affine=ed.affine)


def _off_target(volume: LabelVolume) -> float:
    angle = lv_rv_angle(volume)
    return abs((angle - TARGET_ANGLE_DEG + 180) % 360 - 180)


# one frame on the model grid -------------------------------------------------------------------
def test_cohort_and_real_hearts_agree_in_orientation_on_the_model_grid(
    tmp_path, realdata_dir, acdc_dir
):
    generate_cohort(CohortConfig(n=4, seed=8, n_frames=2, images=False), tmp_path / "c")
    cohort = read_cohort(tmp_path / "c", frames="ed_es")
    mnms = read_cohort(realdata_dir, frames="ed_es")
    acdc = read_cohort(acdc_dir, frames="ed_es")[::16]  # 5 subjects, every group
    for subject in [*cohort, *mnms, *acdc]:
        on_grid = to_model_grid(_pair(subject), GRID, SPACING)
        assert on_grid.spatial_shape == GRID
        assert _off_target(on_grid) < 6.0, subject.subject_id
        assert not apex_first(on_grid), subject.subject_id
        # CHeart reads hearts in true anatomy (the cohort's): scanner-oriented files (cohort,
        # M&Ms) keep a proper map, ACDC's axis-aligned arrays (mirror images) are mirrored
        oriented = scanner_oriented(subject.ed_labels.affine)
        assert oriented == (subject not in acdc)
        assert (np.linalg.det(on_grid.affine[:3, :3]) > 0) == oriented, subject.subject_id


def test_model_grid_keeps_the_volumes(realdata_dir):
    subject = read_cohort(realdata_dir, frames="ed_es")[1]  # G1K1V3
    native = measure_phenotypes(subject.ed_labels, subject.es_labels)
    on_grid = to_model_grid(_pair(subject), GRID, SPACING)
    voxel_ml = float(np.prod(SPACING)) / 1000.0
    lvedv = np.count_nonzero(on_grid.data[0] == Label.LV) * voxel_ml
    lvesv = np.count_nonzero(on_grid.data[1] == Label.LV) * voxel_ml
    assert lvedv == pytest.approx(native.lvedv_ml, rel=0.08)
    assert lvesv == pytest.approx(native.lvesv_ml, rel=0.12)


# phase and conditions of a real source -----------------------------------------------------------
def test_es_phase_from_the_cycle_or_the_cohort_median():
    acdc_like = Subject("p1", ed_frame=0, es_frame=11, n_frames=30)
    assert es_phase(acdc_like) == (pytest.approx(11 / 30), True)
    flat = Subject("p2", ed_frame=0, es_frame=1, n_frames=2)  # M&Ms flat files: ED and ES only
    assert es_phase(flat) == (DEFAULT_ES_PHASE, False)
    with pytest.raises(CardioInputError, match="no end-systolic frame"):
        es_phase(Subject("p3", ed_frame=0, es_frame=None, n_frames=30))


def test_missing_conditions_take_the_training_statistics():
    stats = random_model(seed=0).stats
    subject = Subject("p1", info={"height": 181.0, "weight": 90.0})
    conditions, filled = filled_conditions(subject, stats)
    assert (conditions.height, conditions.weight) == (181.0, 90.0)
    assert sorted(filled) == ["age", "sbp", "sex"]
    assert conditions.age == pytest.approx(stats.mean["age"])
    counts = stats.sex_counts
    assert conditions.sex == max(sorted(counts), key=lambda s: counts[s])


def test_bundled_model_completes_real_hearts(realdata_dir):
    model = load_model()
    subject = read_cohort(realdata_dir, frames="ed_es")[3]  # H1N8S6: LVEF 57.6 % natively
    row = complete_real(model, subject)
    assert row["es_phase_known"] is False
    assert row["es_model_frame"] == round(DEFAULT_ES_PHASE * model.config.n_frames)
    assert set(row["conditions_filled"]) == {"age", "sex", "height", "weight", "sbp"}
    assert row["real"]["lvef"] == pytest.approx(57.6, abs=6.0)  # the grid keeps the real LVEF
    # the completed sequence starts from the real ED frame itself
    assert row["completed"]["lvedv_ml"] == pytest.approx(row["real"]["lvedv_ml"], rel=0.02)
    assert 0.3 < row["dice_es"]["lv"] <= 1.0
    assert 0.0 <= row["lv_exposed_fraction_max"] <= 1.0


def test_evaluate_real_cli(tmp_path, realdata_dir):
    out = tmp_path / "real.json"
    checkpoint = random_model(seed=0).save(tmp_path / "tiny.safetensors")
    argv = ["evaluate", "cheart", "--checkpoint", str(checkpoint), "--real", str(realdata_dir)]
    assert main([*argv, "--out", str(out), "--no-progress", "--limit", "2"]) == 0
    report = json.loads(out.read_text())
    real = report["real"]["sources"][realdata_dir.name]["completion"]
    assert real["n_subjects"] == 2
    assert real["lvef_mae"] is not None
    assert real["lvesv_mae_ml"] is not None
    assert f"real_{realdata_dir.name}_lvef_mae" in report["targets"]
    assert "Real hearts" in out.with_suffix(".md").read_text()


def test_evaluate_needs_data_or_real(tmp_path, capsys):
    assert main(["evaluate", "cheart", "--out", str(tmp_path / "r.json")]) == 2
    assert "--real" in capsys.readouterr().err


# LV enclosure ----------------------------------------------------------------------------------
def _ring(nz: int = 6) -> np.ndarray:
    _, y, x = np.indices((nz, 40, 40))
    r = np.hypot(y - 20, x - 20)
    data = np.zeros((nz, 40, 40), np.uint8)
    data[r < 12] = Label.MYO
    data[r < 8] = Label.LV
    data[(np.abs(y - 20) < 6) & (x > 32) & (x < 38)] = Label.RV
    return data


def test_lv_exposed_fraction():
    closed = _ring()
    assert lv_exposed_fraction(closed) == 0.0
    leaking = closed.copy()
    leaking[2:4, 20, 27:33] = Label.LV  # cavity pokes through the wall into the background
    assert 0.0 < lv_exposed_fraction(leaking) < 0.2
    into_rv = closed.copy()
    into_rv[:, 18:23, 20:34] = Label.LV  # into the RV
    assert lv_exposed_fraction(into_rv) > lv_exposed_fraction(leaking)
    # the basal LV slice (valve plane) may open onto the background
    basal = closed.copy()
    basal[0, 20, 20:40] = Label.LV
    assert lv_exposed_fraction(basal) == 0.0
    assert lv_exposed_fraction(np.zeros((4, 8, 8), np.uint8)) == 0.0


def test_enclose_lv_closes_the_wall_and_keeps_the_base_open():
    leaking = _ring()
    leaking[2:4, 20, 27:33] = Label.LV
    leaking[:, 18:23, 20:34] = np.where(leaking[:, 18:23, 20:34] == Label.RV, Label.LV, Label.MYO)
    leaking[0, 20, 20:40] = Label.LV  # the basal slice stays as it is
    assert lv_exposed_fraction(leaking) > 0.05
    both = torch.from_numpy(np.stack([leaking, _ring()]))
    closed = enclose_lv(both).numpy()
    assert lv_exposed_fraction(closed[0]) == 0.0
    np.testing.assert_array_equal(closed[1], _ring())  # nothing to close: unchanged
    np.testing.assert_array_equal(closed[0][0], leaking[0])
    changed = closed[0] != leaking
    assert set(np.unique(closed[0][changed])) == {Label.MYO}
    # only a thin rim changes: the cavity keeps most of its volume
    assert np.count_nonzero(changed) < 0.25 * np.count_nonzero(leaking == Label.LV)


# motion basis ----------------------------------------------------------------------------------
def test_motion_basis_starts_from_the_old_motion_model(tmp_path):
    old_config = TINY.with_changes(motion=True)
    torch.manual_seed(0)
    old = CHeartNet(old_config)
    with torch.no_grad():  # a motion head that moves something
        old.decoder.displacement.weight.normal_(0.0, 0.1)
    path = save_cheart(tmp_path / "old.safetensors", old)
    new = CHeartNet(old_config.with_changes(motion_basis=3))
    assert warm_start(new, path) == []
    x = torch.randint(0, 4, (2, *TINY.grid))
    c = torch.randn(2, 5)
    with torch.no_grad():
        before = old.eval()(x, c).displacement
        assert torch.equal(new.eval()(x, c).displacement, before)
        new.motion_basis.anatomy[-1].bias.fill_(0.5)
        after = new(x, c).displacement
    assert not torch.allclose(after, before)
    assert after.shape == before.shape


def test_motion_basis_fields_come_from_frame_0_and_mix_per_frame():
    basis = MotionBasis(n_labels=4, decoder_input=6, k=2)
    with torch.no_grad():
        basis.anatomy[-1].weight.normal_(0.0, 0.2)
    first = torch.zeros(1, 4, 16, 16, 16)
    first[:, 0] = 1.0
    moved = first.clone()
    lv = torch.tensor([0.0, 1.0, 0.0, 0.0])[:, None, None, None]
    first[0, :, 4:10, 4:10, 4:10] = lv
    moved[0, :, 6:12, 6:12, 6:12] = lv
    code = torch.randn(1, 3, 6)
    with torch.no_grad():
        a, b = basis(first, code), basis(moved, code)
        same_frame = basis(first, code[:, [0, 0, 0]])
    assert a.shape == (1, 3, 3, 16, 16, 16)
    assert not torch.allclose(a, b)  # another frame 0, other fields
    # every frame mixes the same fields: frames with the same code get the same displacement
    assert torch.allclose(same_frame[:, 0], same_frame[:, 2])
    assert torch.allclose(same_frame[:, 0], a[:, 0])


def test_motion_basis_needs_motion():
    with pytest.raises(CardioInputError, match="motion_basis"):
        TINY.with_changes(motion_basis=2)


def test_default_heart_of_the_bundled_model_contracts():
    """The app's default heart (its default conditions and group, normal; seed 0) from the
    bundled model ejects a normal 55-70 % (issue 19): 38.8 % LVEF before issue 19, 49.6 % with
    the motion basis, 61.6 % with the motion code (README)."""
    from cardio_explorer.app.jobs.state import DEFAULT_CHEART_GROUP, DEFAULT_CONDITIONS
    from cardio_explorer.engine.cheart.inference import generate_sequences, sequence_phenotypes

    model = load_model()
    assert DEFAULT_CHEART_GROUP == "NOR"
    result = generate_sequences(model, DEFAULT_CONDITIONS, 1, seed=0, group=DEFAULT_CHEART_GROUP)[0]
    assert 55.0 <= sequence_phenotypes(result.labels)["lvef"] <= 70.0
    frames = result.labels.data[1:]  # the moved frames keep the LV enclosed
    assert max(lv_exposed_fraction(f) for f in frames) <= 0.01


def test_the_bundled_models_groups_eject_as_their_group():
    """Generation draws the motion code from the chosen group's motion prior p(m | c, g)
    (engine/cheart/prior.py): the network's own p(m | z0, c) read infarcts at LVEF 53 % and drew
    normal hearts at 24 %; the cohort's groups eject NOR 60-64 %, DCM 19-21 % (README)."""
    from cardio_explorer.app.jobs.state import DEFAULT_CONDITIONS
    from cardio_explorer.engine.cheart.inference import generate_sequences, sequence_phenotypes

    model = load_model()
    assert model.prior is not None
    assert model.prior.motion is not None

    def ejection(group: str) -> np.ndarray:
        hearts = generate_sequences(model, DEFAULT_CONDITIONS, 4, seed=3, group=group)
        return np.array([sequence_phenotypes(h.labels)["lvef"] for h in hearts])

    normal, dilated = ejection("NOR"), ejection("DCM")
    assert normal.min() > 50.0
    assert dilated.max() < 45.0
    assert normal.mean() - dilated.mean() > 25.0


def test_generated_hearts_lie_in_true_anatomy_in_world_coordinates():
    """A generated heart has no scanner, so it carries a typical short-axis placement: an
    axis-aligned header would declare ACDC's mirror convention for CHeart's true-anatomy grid
    (viewers would show the RV on the patient's left, the label VAE would read it mirrored)."""
    from cardio_explorer.engine.cheart.inference import generate_sequences

    model = load_model(None)
    conditions = {"age": 50, "sex": "F", "height": 165, "weight": 65, "sbp": 120}
    sequence = generate_sequences(model, conditions, 1, seed=0)[0].labels
    assert scanner_oriented(sequence.affine)
    assert np.isclose(np.linalg.det(sequence.affine[:3, :3]), np.prod(model.config.spacing))
    ed = sequence.data[0]

    def world_centre(mask: np.ndarray) -> np.ndarray:
        return sequence.index_to_world(np.argwhere(mask).mean(axis=0))[0]

    lv_to_rv = world_centre(ed == Label.RV) - world_centre(ed == Label.LV)
    assert lv_to_rv[0] > 0  # RAS: the RV to the patient's right of the LV ...
    assert lv_to_rv[1] > 0  # ... and anterior
    lv_slices = np.flatnonzero((ed == Label.LV).any(axis=(1, 2)))
    base = world_centre(np.isin(np.arange(ed.shape[0]), lv_slices[:2])[:, None, None] & (ed > 0))
    apex = world_centre(np.isin(np.arange(ed.shape[0]), lv_slices[-2:])[:, None, None] & (ed > 0))
    assert (apex - base)[0] < 0  # the apex to the left of the base,
    assert (apex - base)[1] > 0  # anterior
    assert (apex - base)[2] < 0  # and inferior
