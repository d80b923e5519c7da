"""Latent atlas from a tiny label VAE, its JSON round trip, and the NOR -> pathology morph."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tiny_models import SIZE, TINY

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.atlas import (
    ATLAS_SLICES,
    LatentAtlas,
    atlas_extra,
    atlas_from_extra,
)
from cardio_explorer.engine.label_vae.encoding import build_atlas, encode_stack, interpolate_codes
from cardio_explorer.engine.label_vae.morph import (
    PathologyMorph,
    check_alpha,
    decode_codes,
    morph_pathology,
    morph_series,
)
from cardio_explorer.engine.label_vae.network import build_label_vae, save_label_vae
from cardio_explorer.engine.metrics.phenotypes import Phenotypes
from cardio_explorer.engine.subject import Conditions, Subject
from cardio_explorer.engine.volume import LabelVolume

SPACING = (8.0, 1.5, 1.5)


def _heart(n_slices: int, lv_radius: float, wall: float, rng) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    data = np.zeros((n_slices, SIZE, SIZE), dtype=np.uint8)
    for k in range(n_slices):
        r = lv_radius * (1.0 - 0.5 * k / max(n_slices, 2)) + rng.normal(0, 0.2)
        dist = np.hypot(yy - 16, xx - 14)
        data[k][np.hypot(yy - 16, xx - 25) < r + wall] = 3
        data[k][dist < r + wall] = 2
        data[k][dist < r] = 1
    return data


def _subject(sid, group, n_slices, rng, lv_radius=5.0, wall=2.0, origin=(0.0, 0.0, 0.0)):
    ed = LabelVolume.from_array(_heart(n_slices, lv_radius, wall, rng), SPACING, origin)
    es = LabelVolume.from_array(_heart(n_slices, 0.7 * lv_radius, wall + 1, rng), SPACING, origin)
    return Subject(
        subject_id=sid,
        group=group,
        conditions=Conditions(50, "F", 165, 60, 120),
        ed_frame=0,
        es_frame=7,
        n_frames=20,
        labels={0: ed, 7: es},
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_label_vae(TINY).eval()


@pytest.fixture(scope="module")
def subjects():
    rng = np.random.default_rng(5)
    out = [
        _subject("nor1", "NOR", 9, rng, origin=(-20.0, 4.0, 30.0)),
        _subject("nor2", "NOR", 2, rng),  # linear fallback
        _subject("nor3", "NOR", 1, rng),  # nearest fallback
        _subject("hcm1", "HCM", 8, rng, lv_radius=3.0, wall=4.0),  # a group of one subject
        _subject("unknown", None, 5, rng),
    ]
    out += [_subject(f"dcm{i}", "DCM", 6 + i, rng, lv_radius=8.0, wall=1.5) for i in range(3)]
    return out


@pytest.fixture(scope="module")
def atlas(model, subjects):
    return build_atlas(model, subjects, refine_steps=0)


def test_interpolation_handles_every_stack_length():
    assert interpolate_codes(np.ones((1, 4))).method == "nearest"
    assert interpolate_codes(np.ones((2, 4))).method == "linear"
    assert interpolate_codes(np.ones((3, 4))).method == "linear"
    cubic = np.arange(6.0)[:, None] ** 3 * np.ones((1, 2))
    out = interpolate_codes(cubic, 11)
    assert out.method == "cubic"
    np.testing.assert_allclose(out.codes[:, 0], np.linspace(0, 5, 11) ** 3, atol=1e-9)
    for n in (1, 2, 3, 7):
        codes = np.random.default_rng(n).normal(size=(n, 4))
        res = interpolate_codes(codes).codes
        assert res.shape == (ATLAS_SLICES, 4)
        np.testing.assert_allclose(res[[0, -1]], codes[[0, -1]])


def test_atlas_statistics_cover_every_group_and_phase(atlas):
    assert atlas.groups == ("NOR", "DCM", "HCM")
    assert atlas.nz == TINY.nz
    for group, n in (("NOR", 3), ("DCM", 3), ("HCM", 1)):
        for phase in ("ED", "ES"):
            s = atlas.group_stats(group, phase)
            assert s.n_subjects == n
            assert s.mean.shape == s.std.shape == s.min.shape == (ATLAS_SLICES, TINY.nz)
            assert s.dim_kendall.shape == (TINY.nz, TINY.nz)
            assert np.all(s.min <= s.mean + 1e-12)
            assert np.all(s.mean <= s.max + 1e-12)
    np.testing.assert_array_equal(atlas.group_stats("HCM", "ED").std, 0.0)
    assert atlas.reference_ids == ("nor1", "nor2", "nor3")  # none dropped for few slices
    assert atlas.info["n_interpolation_fallbacks"] == 2
    assert atlas.info["n_skipped_no_group"] == 1


def test_atlas_codes_are_the_encoder_posterior_means(model, subjects, atlas):
    nor1 = subjects[0]
    raw = encode_stack(model, nor1.ed_labels)
    np.testing.assert_allclose(
        atlas.reference("nor1").codes["ED"][[0, -1]], raw[[0, -1]], atol=1e-6
    )


def test_build_atlas_restores_training_mode_and_logs_fallbacks(model, subjects, caplog):
    model.train()
    try:
        with caplog.at_level(logging.INFO):
            build_atlas(model, subjects[:3], refine_steps=0)
        assert model.training
        assert "2 of 3 subjects had under 4 slices" in caplog.text
    finally:
        model.eval()


def test_atlas_json_round_trip_is_compact_and_faithful(atlas):
    text = atlas.to_json()
    back = LatentAtlas.from_json(text)
    assert back.nz == atlas.nz
    assert back.groups == atlas.groups
    for key, s in atlas.stats.items():
        np.testing.assert_allclose(back.stats[key].mean, s.mean, atol=1e-5)
        np.testing.assert_allclose(back.stats[key].dim_kendall, s.dim_kendall, atol=1e-4)
        assert back.stats[key].n_subjects == s.n_subjects
    ref, back_ref = atlas.reference("nor1"), back.reference("nor1")
    np.testing.assert_allclose(back_ref.codes["ES"], ref.codes["ES"], atol=1e-5)
    np.testing.assert_allclose(back_ref.geometry["ED"].affine, ref.geometry["ED"].affine)
    assert back_ref.geometry["ED"].n_slices == 9
    assert back_ref.conditions == ref.conditions
    # about 10 characters per stored number
    n_numbers = sum(5 * s.mean.size for s in atlas.stats.values()) + 3 * 2 * ATLAS_SLICES * 4
    assert len(text) < 12 * n_numbers


def test_atlas_json_keeps_nan_as_null(atlas):
    data = atlas.to_dict()
    data["groups"]["DCM"]["ED"]["std"][0][0] = None
    back = LatentAtlas.from_dict(data)
    assert np.isnan(back.group_stats("DCM", "ED").std[0, 0])
    assert "NaN" not in LatentAtlas.to_json(back)


def test_malformed_atlas_is_a_clear_error(atlas):
    with pytest.raises(CardioInputError, match="latent atlas"):
        LatentAtlas.from_json("{not json")
    broken = atlas.to_dict()
    del broken["groups"]["NOR"]["ED"]["mean"]
    with pytest.raises(CardioInputError, match="malformed"):
        LatentAtlas.from_dict(broken)
    with pytest.raises(CardioInputError, match="no latent atlas"):
        atlas_from_extra({}, "model.safetensors")


def test_morph_at_alpha_zero_decodes_the_subject_codes(model, atlas):
    result = morph_pathology(model, atlas, "nor1", "DCM", "ED", 0.0)
    codes = atlas.reference("nor1").codes["ED"]
    np.testing.assert_array_equal(result.latent_path, codes)
    np.testing.assert_array_equal(result.labels.data, decode_codes(model, codes))
    assert result.alpha == 0.0


def test_morph_at_alpha_one_is_the_sample(model, atlas):
    morph = PathologyMorph(model, atlas, optimise=False)
    result = morph.morph("nor1", "DCM", "ES", 1.0, correlated=True, seed=4)
    sample = morph.sampler.sample("nor1", "DCM", "ES", True, 4)
    np.testing.assert_allclose(result.latent_path, sample)


def test_morph_geometry_spans_the_subject_extent(model, atlas, subjects):
    result = morph_pathology(model, atlas, "nor1", "HCM", "ED", 0.0)
    labels, original = result.labels, subjects[0].ed_labels
    assert labels.spatial_shape == (ATLAS_SLICES, SIZE, SIZE)
    assert labels.spacing_zyx[1:] == pytest.approx(original.spacing_zyx[1:])
    assert labels.spacing_zyx[0] == pytest.approx(8.0 * 8 / 31)
    first_last = labels.index_to_world([[0, 0, 0], [31, 0, 0]])
    np.testing.assert_allclose(first_last, original.index_to_world([[0, 0, 0], [8, 0, 0]]))


def test_morph_length_goes_from_the_subject_to_the_target_group(model, atlas, subjects):
    # nor1 spans 8 x 8 = 64 mm; the DCM subjects 6, 7 and 8 slices: 40, 48, 56 mm, mean 48
    assert atlas.group_stats("DCM", "ED").extent_mm == pytest.approx(48.0)
    assert atlas.group_stats("HCM", "ES").extent_mm == pytest.approx(56.0)
    morph = PathologyMorph(model, atlas, optimise=False)
    base = subjects[0].ed_labels.index_to_world([[0, 0, 0]])
    for alpha, extent in ((0.0, 64.0), (0.5, 56.0), (1.0, 48.0)):
        step = morph.morph("nor1", "DCM", "ED", alpha)
        assert step.labels.spacing_zyx[0] * 31 == pytest.approx(extent)
        np.testing.assert_allclose(step.labels.index_to_world([[0, 0, 0]]), base)
        native = morph.at_native_slices(step)
        assert native.spatial_shape[0] == 9
        assert native.spacing_zyx[0] * 8 == pytest.approx(extent)
    # ED and ES share one length, so the ejection fraction is measured on one heart
    es = morph.morph("nor1", "DCM", "ES", 0.7)
    ed = morph.morph("nor1", "DCM", "ED", 0.7)
    np.testing.assert_allclose(es.labels.affine, ed.labels.affine)
    # an atlas written before stack lengths were stored keeps the subject's length
    data = atlas.to_dict()
    for phases in data["groups"].values():
        for stats in phases.values():
            del stats["extent_mm"]
    old = PathologyMorph(model, LatentAtlas.from_dict(data), optimise=False)
    assert old.morph("nor1", "DCM", "ED", 1.0).labels.spacing_zyx[0] * 31 == pytest.approx(64.0)


def test_single_slice_subject_fills_its_slab(model, atlas):
    labels = morph_pathology(model, atlas, "nor3", "DCM", "ED", 0.3).labels
    assert labels.spatial_shape[0] == ATLAS_SLICES
    assert labels.spacing_zyx[0] == pytest.approx(8.0 / ATLAS_SLICES)
    centres = labels.index_to_world([[0, 0, 0], [31, 0, 0]])[:, 2]
    assert centres[0] == pytest.approx(-4.0 + 0.125)
    assert centres[1] == pytest.approx(4.0 - 0.125)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "half"])
def test_alpha_outside_unit_interval_is_an_error(model, atlas, alpha):
    with pytest.raises(CardioInputError, match="alpha"):
        morph_pathology(model, atlas, "nor1", "DCM", "ED", alpha)
    with pytest.raises(CardioInputError, match="alpha"):
        check_alpha(alpha)


def test_unknown_subject_group_or_phase_is_a_clear_error(model, atlas):
    with pytest.raises(CardioInputError, match="dcm0"):
        morph_pathology(model, atlas, "dcm0", "DCM", "ED", 0.5)  # not a reference subject
    with pytest.raises(CardioInputError, match="ARV"):
        morph_pathology(model, atlas, "nor1", "ARV", "ED", 0.5)
    with pytest.raises(CardioInputError, match="phase"):
        morph_pathology(model, atlas, "nor1", "DCM", "XX", 0.5)


def test_alpha_changes_reuse_the_cached_sample(model, atlas):
    morph = PathologyMorph(model, atlas, optimise=False)
    calls = []
    original = morph.sampler.dim_factor
    morph.sampler.dim_factor = lambda *a: calls.append(a) or original(*a)
    for alpha in (0.1, 0.4, 0.9):
        morph.morph("nor2", "DCM", "ED", alpha, seed=11)
    assert len(calls) == 1


def test_series_matches_single_steps(model, atlas):
    alphas = np.linspace(0, 1, 5)
    series = morph_series(model, atlas, "nor1", "DCM", "ED", alphas, correlated=False, seed=2)
    assert [r.alpha for r in series] == pytest.approx(list(alphas))
    single = morph_pathology(model, atlas, "nor1", "DCM", "ED", alphas[3], False, 2)
    np.testing.assert_array_equal(series[3].labels.data, single.labels.data)
    np.testing.assert_allclose(series[3].latent_path, single.latent_path)
    assert not series[3].correlated


def test_correlated_and_uncorrelated_share_alpha_zero_only(model, atlas):
    morph = PathologyMorph(model, atlas, optimise=False)
    a = morph.latent_path("nor1", "DCM", "ED", 1.0, correlated=True, seed=0)
    b = morph.latent_path("nor1", "DCM", "ED", 1.0, correlated=False, seed=0)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(
        morph.latent_path("nor1", "DCM", "ED", 0.0, True, 0),
        morph.latent_path("nor1", "DCM", "ED", 0.0, False, 0),
    )


def test_phenotypes_along_the_morph(model, atlas):
    phenos = PathologyMorph(model, atlas).phenotypes("nor1", "DCM", [0.0, 1.0], seed=1)
    assert len(phenos) == 2
    assert all(isinstance(p, Phenotypes) for p in phenos)


def test_morph_from_checkpoint(model, atlas, tmp_path):
    path = save_label_vae(tmp_path / "vae.safetensors", model, extra=atlas_extra(atlas))
    morph = PathologyMorph.from_checkpoint(path)
    assert morph.atlas.reference_ids == atlas.reference_ids
    result = morph.morph("nor1", "HCM", "ED", 0.0)
    expected = decode_codes(model, morph.atlas.reference("nor1").codes["ED"])
    # folded BatchNorm and 1e-5 rounding of the stored codes: nearly every pixel agrees
    assert np.mean(result.labels.data == expected) > 0.99


class AnalyticVAE(torch.nn.Module):
    """Stand-in whose codes are ring geometry: LV radius, wall thickness, centre y, centre x."""

    nz = 4

    def encode(self, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lv = onehot[:, 1].sum(dim=(1, 2))
        outer = lv + onehot[:, 2].sum(dim=(1, 2))
        yy, xx = torch.meshgrid(torch.arange(float(SIZE)), torch.arange(float(SIZE)), indexing="ij")
        weight = onehot[:, 1] / lv.clamp(min=1)[:, None, None]
        mu = torch.stack(
            [
                torch.sqrt(lv / np.pi),
                torch.sqrt(outer / np.pi) - torch.sqrt(lv / np.pi),
                (weight * yy).sum(dim=(1, 2)),
                (weight * xx).sum(dim=(1, 2)),
            ],
            dim=1,
        )
        return mu, torch.zeros_like(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        yy, xx = torch.meshgrid(torch.arange(float(SIZE)), torch.arange(float(SIZE)), indexing="ij")
        r, wall, cy, cx = (z[:, i, None, None] for i in range(4))
        dist = torch.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        logits = torch.zeros(len(z), 4, SIZE, SIZE)
        logits[:, 2] = (dist < r + wall).float()
        logits[:, 1] = 2 * (dist < r).float()
        logits[:, 0] = 0.5
        return logits


def _ring_subject(sid, group, n_slices, radius, wall, rng):
    yy, xx = np.mgrid[:SIZE, :SIZE]
    stacks = {}
    for frame, scale in ((0, 1.0), (7, 0.75)):
        data = np.zeros((n_slices, SIZE, SIZE), dtype=np.uint8)
        for k in range(n_slices):
            r = scale * radius * (1.0 - 0.04 * k)
            dist = np.hypot(yy - 15.5, xx - 15.5)
            data[k][dist < r + wall] = 2
            data[k][dist < r] = 1
        stacks[frame] = LabelVolume.from_array(data, SPACING)
    return Subject(sid, group, Conditions(50, "M", 175, 75, 120), 0, 7, 20, stacks)


def test_correlated_samples_are_more_consistent_than_uncorrelated():
    from cardio_explorer.engine.metrics.consistency import irregularity, resample_slices

    rng = np.random.default_rng(0)
    subjects = [
        _ring_subject(f"n{i}", "NOR", 10, rng.uniform(5, 7), rng.uniform(1.5, 2.5), rng)
        for i in range(6)
    ]
    subjects += [
        _ring_subject(f"d{i}", "DCM", 10, rng.uniform(8, 11), rng.uniform(1, 2), rng)
        for i in range(6)
    ]
    model = AnalyticVAE()
    atlas = build_atlas(model, subjects, refine_steps=0)
    morph = PathologyMorph(model, atlas)
    scores = {True: [], False: []}
    for seed in range(6):
        for correlated in (True, False):
            labels = morph.morph(f"n{seed}", "DCM", "ED", 1.0, correlated, seed).labels
            scores[correlated].append(irregularity(resample_slices(labels, 10)))
    real = np.mean([irregularity(s.ed_labels) for s in subjects])
    assert np.mean(scores[True]) < 0.7 * np.mean(scores[False])
    assert np.mean(scores[True]) < 1.5 * real + 0.05
    # the DCM endpoint is larger than the NOR start
    start = morph.morph("n0", "DCM", "ED", 0.0).labels
    end = morph.morph("n0", "DCM", "ED", 1.0, seed=0).labels
    assert np.count_nonzero(end.data == 1) > 1.5 * np.count_nonzero(start.data == 1)


def test_a_morph_decodes_at_its_subjects_own_slice_positions():
    rng = np.random.default_rng(1)
    subjects = [_ring_subject(f"n{i}", "NOR", 10, 6.0 + i / 3, 2.0, rng) for i in range(3)]
    subjects += [_ring_subject(f"d{i}", "DCM", 10, 9.0 + i / 3, 1.5, rng) for i in range(3)]
    model = AnalyticVAE()
    morph = PathologyMorph(model, build_atlas(model, subjects, refine_steps=0))
    result = morph.morph("n0", "DCM", "ED", 0.5, True, 0)
    native = morph.at_native_slices(result)
    geometry = morph.atlas.reference("n0").geometry["ED"]
    assert result.labels.data.shape[0] == 32
    assert native.data.shape == (10, *result.labels.data.shape[1:])
    np.testing.assert_allclose(native.affine, geometry.affine)
    # The first and last native slices sit on the first and last of the 32.
    assert np.array_equal(native.data[0], result.labels.data[0])
    assert np.array_equal(native.data[-1], result.labels.data[-1])


def test_reference_body_size_from_height_and_weight_alone(model):
    from cardio_explorer.engine.label_vae.encoding import encode_subject
    from cardio_explorer.engine.subject import BodySize

    rng = np.random.default_rng(0)
    subject = _subject("acdc1", "NOR", 4, rng)
    assert BodySize.of(subject).bsa == pytest.approx(subject.conditions.bsa)
    subject.conditions = None  # ACDC: height and weight only
    subject.info.update(height=180.0, weight=80.0)
    assert BodySize.of(subject).bsa == pytest.approx((180 * 80 / 3600) ** 0.5)
    ref, _ = encode_subject(model, subject, refine_steps=0)
    assert ref.conditions is None
    assert ref.bsa_m2 == pytest.approx(2.0)
    back = LatentAtlas.from_json(
        LatentAtlas(TINY.nz, ATLAS_SLICES, {}, {"acdc1": ref}).to_json()
    ).reference("acdc1")
    assert (back.body.height, back.body.weight) == (180.0, 80.0)
    for height, weight in ((None, 80.0), ("tall", 80.0), (180.0, 0.0), (float("nan"), 80.0)):
        subject.info.update(height=height, weight=weight)
        assert BodySize.of(subject) is None
