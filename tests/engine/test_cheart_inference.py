"""Completion, generation, sweeps, population curves and latent trajectories (tiny model)."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.cheart.config import TINY
from cardio_explorer.engine.cheart.data import heart_centre_xyz
from cardio_explorer.engine.cheart.inference import (
    complete_sequence,
    condition_sweep,
    generate_sequences,
    population_curves,
    sequence_phenotypes,
)
from cardio_explorer.engine.cheart.toy import random_model, toy_subjects
from cardio_explorer.engine.cheart.trajectories import embed_codes, latent_trajectory
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.volume import LabelVolume


@pytest.fixture(scope="module")
def model():
    return random_model(TINY, seed=0)


@pytest.fixture(scope="module")
def subject():
    return toy_subjects(1, grid=(24, 24, 24), spacing_zyx=(5.0, 5.0, 5.0), n_frames=6, seed=2)[0]


def test_completion_shapes_and_geometry(model, subject):
    ed = subject.ed_labels
    result = complete_sequence(model, ed, subject.conditions)
    labels = result.labels
    assert labels.data.shape == (TINY.n_frames, *TINY.grid)
    assert labels.data.dtype == np.uint8
    assert labels.spacing_zyx == pytest.approx(TINY.spacing)
    assert labels.frame_duration_ms == model.frame_duration_ms
    # The model grid is centred on the ED heart in world coordinates. The toy's axis-aligned
    # header reads as ACDC's convention, so CHeart sees it mirrored across its LV -> RV axis and
    # centres on the mirrored box: within two voxels of the file's box centre.
    centre = labels.index_to_world((np.array(TINY.grid) - 1) / 2.0)[0]
    np.testing.assert_allclose(centre, heart_centre_xyz(ed), atol=2 * max(ed.spacing_zyx))
    assert result.latents.shape == (TINY.n_frames, TINY.z_dim)
    assert result.warnings == ()


def test_completion_is_deterministic_and_uses_the_ed_code(model, subject):
    a = complete_sequence(model, subject.ed_labels, subject.conditions)
    b = complete_sequence(model, subject.ed_labels, subject.conditions.as_dict())
    assert np.array_equal(a.labels.data, b.labels.data)
    np.testing.assert_allclose(a.latents, b.latents)


def test_out_of_range_conditions_warn_in_the_result(model, subject):
    values = subject.conditions.as_dict() | {"age": 130, "weight": 300}
    result = complete_sequence(model, subject.ed_labels, values)
    assert len(result.warnings) == 2
    assert "age 130 years is outside the training range" in result.warnings[0]
    generated = generate_sequences(model, values, n_samples=1)[0]
    assert generated.warnings == result.warnings


def test_bad_inputs_are_clear_errors(model, subject):
    bad = subject.conditions.as_dict() | {"sbp": "high"}
    with pytest.raises(CardioInputError, match="condition 'sbp'"):
        complete_sequence(model, subject.ed_labels, bad)
    with pytest.raises(CardioInputError, match="missing height"):
        generate_sequences(model, {"age": 50, "sex": "F", "weight": 60, "sbp": 120})
    four_d = LabelVolume(
        data=np.stack([subject.ed_labels.data] * 2), affine=subject.ed_labels.affine
    )
    with pytest.raises(CardioInputError, match="expected one 3D frame"):
        complete_sequence(model, four_d, subject.conditions)
    empty = subject.ed_labels.with_data(np.zeros_like(subject.ed_labels.data))
    with pytest.raises(CardioInputError, match="no labelled voxels"):
        complete_sequence(model, empty, subject.conditions)
    with pytest.raises(CardioInputError, match="n_samples"):
        generate_sequences(model, subject.conditions, n_samples=0)


def test_generation_is_seeded_and_on_the_canonical_grid(model, subject):
    results = generate_sequences(model, subject.conditions, n_samples=3, seed=5)
    again = generate_sequences(model, subject.conditions, n_samples=3, seed=5)
    other = generate_sequences(model, subject.conditions, n_samples=1, seed=6)
    assert len(results) == 3
    for a, b in zip(results, again, strict=True):
        assert np.array_equal(a.labels.data, b.labels.data)
    assert not np.allclose(results[0].latents, other[0].latents)
    assert not np.allclose(results[0].latents[0], results[1].latents[0])
    centre = results[0].labels.index_to_world((np.array(TINY.grid) - 1) / 2.0)[0]
    np.testing.assert_allclose(centre, 0.0, atol=1e-9)
    assert results[0].labels.n_frames == TINY.n_frames


def test_condition_sweep_keeps_z_fixed(model, subject):
    sweep = condition_sweep(model, subject.conditions, "age", [20, 50, 80], seed=1)
    assert [r.conditions.age for r in sweep] == [20.0, 50.0, 80.0]
    assert all(r.conditions.sex == subject.conditions.sex for r in sweep)
    for r in sweep[1:]:
        np.testing.assert_allclose(r.latents[0], sweep[0].latents[0])
    assert not np.allclose(sweep[0].latents[-1], sweep[-1].latents[-1])
    z = np.arange(TINY.z_dim, dtype=np.float32) / 10
    fixed = condition_sweep(model, subject.conditions, "sex", ["F", "M"], z=z)
    np.testing.assert_allclose(fixed[0].latents[0], z)
    with pytest.raises(CardioInputError, match="expected 8 values"):
        condition_sweep(model, subject.conditions, "age", [30], z=np.zeros(3))


def test_population_curves_have_mean_inside_the_interval(model):
    curves = population_curves(model, "age", [30, 60, 90], n_per_step=4, seed=0)
    assert curves["values"] == [30.0, 60.0, 90.0]
    assert set(curves["curves"]) == {"F", "M"}
    for per_sex in curves["curves"].values():
        for stats in per_sex.values():
            assert len(stats["mean"]) == 3
            assert all(
                lo <= m <= hi
                for lo, m, hi in zip(stats["low"], stats["mean"], stats["high"], strict=True)
            )
    assert any("age 90" in w for w in curves["warnings"])


def test_sequence_phenotypes_use_the_smallest_lv_frame_as_es():
    data = np.zeros((3, 4, 4, 4), dtype=np.uint8)
    data[0, :2] = 1
    data[1, :1] = 1
    data[2, :3] = 1
    data[:, 3] = 2
    vol = LabelVolume.from_array(data, (10.0, 10.0, 10.0))
    ph = sequence_phenotypes(vol)
    assert ph["lvedv_ml"] == pytest.approx(32.0)
    assert ph["lvesv_ml"] == pytest.approx(16.0)
    assert ph["lvef"] == pytest.approx(50.0)
    assert ph["lvm_g"] == pytest.approx(16.0 * 1.05)


def test_latent_trajectory_of_results_and_of_volumes(model, subject):
    result = generate_sequences(model, subject.conditions, n_samples=1, seed=0)[0]
    np.testing.assert_allclose(latent_trajectory(model, result), result.latents)
    frames = np.stack([subject.labels[t].data for t in range(subject.n_frames)])
    volume = LabelVolume(data=frames, affine=subject.ed_labels.affine)
    codes = latent_trajectory(model, volume, subject.conditions)
    assert codes.shape == (subject.n_frames, TINY.z_dim)
    # Frame 0 of an encoded sequence is exactly what completion starts from.
    completed = complete_sequence(model, subject.ed_labels, subject.conditions)
    np.testing.assert_allclose(codes[0], completed.latents[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(CardioInputError, match="3D\\+t"):
        latent_trajectory(model, subject.ed_labels)


def test_embeddings_keep_the_leading_shape():
    codes = np.random.default_rng(0).normal(size=(6, 5, 8))
    pca = embed_codes(codes, "pca")
    assert pca.shape == (6, 5, 2)
    np.testing.assert_allclose(embed_codes(codes, "pca"), pca)
    # PCA axes carry the most variance: the first axis at least as much as the second.
    assert pca[..., 0].var() >= pca[..., 1].var()
    tsne = embed_codes(codes, "tsne", seed=1)
    assert tsne.shape == (6, 5, 2)
    assert np.all(np.isfinite(tsne))
    assert embed_codes(codes[:1, :3], "tsne").shape == (1, 3, 2)  # too few: PCA
    with pytest.raises(CardioInputError, match="'pca' or 'tsne'"):
        embed_codes(codes, "umap")
