"""Truncated-normal marginals, the Gaussian copula and the caching sampler."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import truncnorm

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.atlas import (
    GroupStats,
    LatentAtlas,
    ReferenceSubject,
    StackGeometry,
)
from cardio_explorer.engine.label_vae.encoding import group_statistics
from cardio_explorer.engine.label_vae.sampling import (
    PseudoPathologySampler,
    copula_sample,
    sample_pseudo_pathology,
    truncated_normal_ppf,
)

N_SLICES, NZ = 32, 3


def _stats(mean=0.0, std=1.0, lo=-np.inf, hi=np.inf, dim_kendall=None, shape=(N_SLICES, NZ)):
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=float), shape).copy()  # noqa: E731
    return GroupStats(
        "DCM",
        "ED",
        full(mean),
        full(std),
        full(lo),
        full(hi),
        5,
        np.eye(shape[1]) if dim_kendall is None else dim_kendall,
    )


def test_ppf_degenerate_statistics_never_fail():
    u = np.full(6, 0.9)
    mean = np.array([1.0, 1.0, 1.0, np.nan, 1.0, 0.0])
    std = np.array([0.0, np.nan, 1.0, 1.0, 1.0, 1.0])
    lo = np.array([0.0, 0.0, 2.0, -1.0, np.nan, 3.0])
    hi = np.array([2.0, 2.0, 2.0, 3.0, np.nan, 1.0])  # last: swapped bounds
    out = truncated_normal_ppf(u, mean, std, lo, hi)
    assert np.all(np.isfinite(out))
    assert out[0] == 1.0  # std 0 -> mean
    assert out[1] == 1.0  # std NaN -> mean
    assert out[2] == 2.0  # min == max
    assert -1.0 <= out[3] <= 3.0  # NaN mean -> inside the bounds
    assert out[4] == pytest.approx(1.0 + 1.2815515655446004)  # NaN bounds -> untruncated
    assert 1.0 <= out[5] <= 3.0


def test_ppf_matches_scipy_truncnorm():
    u = np.array([0.1, 0.5, 0.99])
    out = truncated_normal_ppf(u, 0.5, 2.0, -1.0, 1.5)
    expected = truncnorm.ppf(u, (-1.0 - 0.5) / 2.0, (1.5 - 0.5) / 2.0, loc=0.5, scale=2.0)
    np.testing.assert_allclose(out, expected)


def test_ppf_window_far_in_a_tail_stays_in_bounds():
    out = truncated_normal_ppf(np.array([0.5]), 0.0, 1e-3, 5.0, 6.0)
    assert 5.0 <= out[0] <= 6.0


def test_uncorrelated_sample_is_the_truncated_normal():
    stats_ = _stats(mean=1.0, std=2.0, lo=0.0, hi=3.0)
    draws = np.stack([sample_pseudo_pathology(stats_, seed) for seed in range(60)])
    assert draws.min() >= 0.0
    assert draws.max() <= 3.0
    a, b = (0.0 - 1.0) / 2.0, (3.0 - 1.0) / 2.0
    assert draws.mean() == pytest.approx(truncnorm.mean(a, b, loc=1.0, scale=2.0), abs=0.03)
    assert draws.std() == pytest.approx(truncnorm.std(a, b, loc=1.0, scale=2.0), abs=0.03)


def test_copula_keeps_marginals_and_imposes_correlation(rng):
    tau = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.0], [-0.3, 0.0, 1.0]])
    rho = np.sin(np.pi * tau / 2)
    mean = rng.normal(size=(N_SLICES, NZ)) * 3
    stats_ = _stats(mean=mean, std=0.5, lo=mean - 10, hi=mean + 10, dim_kendall=tau)
    factor = np.linalg.cholesky(rho)
    draws = np.stack(
        [copula_sample(stats_, rng.standard_normal((N_SLICES, NZ)), factor) for _ in range(400)]
    )
    # Marginals: each element keeps its own mean (not mixed with other dimensions) and std.
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.12)
    assert draws.std(axis=0).mean() == pytest.approx(0.5, abs=0.03)
    # Dependence: correlation between latent dimensions is the target.
    flat = ((draws - mean) / 0.5).reshape(-1, NZ)
    np.testing.assert_allclose(np.corrcoef(flat.T), rho, atol=0.05)


def test_slice_factor_correlates_slices(rng):
    stats_ = _stats(shape=(4, NZ))
    rho = np.full((4, 4), 0.9) + 0.1 * np.eye(4)
    draws = np.stack(
        [
            copula_sample(
                stats_, rng.standard_normal((4, NZ)), slice_factor=np.linalg.cholesky(rho)
            )
            for _ in range(500)
        ]
    )
    corr = np.corrcoef(draws[:, 0, 0], draws[:, 3, 0])[0, 1]
    assert corr == pytest.approx(0.9, abs=0.05)


def _atlas(stats_list, references=()):
    return LatentAtlas(
        nz=NZ,
        n_slices=N_SLICES,
        stats={(s.group, s.phase): s for s in stats_list},
        references={r.subject_id: r for r in references},
    )


def _reference(rng, subject_id="nor1"):
    codes = np.cumsum(rng.normal(size=(N_SLICES, NZ)), axis=0)
    geometry = StackGeometry(np.diag([1.5, 1.5, 8.0, 1.0]), 10)
    return ReferenceSubject(subject_id, "NOR", {"ED": codes}, {"ED": geometry})


def test_group_with_one_subject_samples_its_mean(rng):
    stack = rng.normal(size=(1, N_SLICES, NZ))
    stats_ = group_statistics("HCM", "ED", stack)
    assert stats_.n_subjects == 1
    ref = _reference(rng)
    sampler = PseudoPathologySampler(_atlas([stats_], [ref]))
    for correlated in (True, False):
        sample = sampler.sample("nor1", "HCM", "ED", correlated=correlated, seed=3)
        np.testing.assert_allclose(sample, stack[0])


def test_singular_dimension_correlation_still_samples(rng):
    stats_ = _stats(dim_kendall=np.ones((NZ, NZ)))  # perfectly correlated: singular
    ref = _reference(rng)
    sample = PseudoPathologySampler(_atlas([stats_], [ref])).sample("nor1", "DCM", "ED", seed=1)
    assert np.all(np.isfinite(sample))
    # near-perfect correlation: every latent dimension moves together
    assert np.corrcoef(sample.T).min() > 0.95


def test_nan_statistics_give_finite_samples(rng):
    stats_ = _stats(
        mean=0.2, std=np.nan, lo=np.nan, hi=np.nan, dim_kendall=np.full((NZ, NZ), np.nan)
    )
    sample = PseudoPathologySampler(_atlas([stats_], [_reference(rng)])).sample(
        "nor1", "DCM", "ED", seed=0
    )
    np.testing.assert_allclose(sample, 0.2)


def test_sampler_is_seeded_cached_and_read_only(rng):
    sampler = PseudoPathologySampler(_atlas([_stats()], [_reference(rng)]))
    first = sampler.sample("nor1", "DCM", "ED", correlated=True, seed=7)
    assert sampler.sample("nor1", "DCM", "ED", correlated=True, seed=7) is first
    assert not first.flags.writeable
    fresh = PseudoPathologySampler(sampler.atlas).sample("nor1", "DCM", "ED", True, 7)
    np.testing.assert_array_equal(fresh, first)
    other = sampler.sample("nor1", "DCM", "ED", correlated=True, seed=8)
    assert not np.allclose(other, first)
    uncorrelated = sampler.sample("nor1", "DCM", "ED", correlated=False, seed=7)
    assert not np.allclose(uncorrelated, first)


def test_correlated_samples_are_smoother_along_slices(rng):
    stats_ = _stats()
    sampler = PseudoPathologySampler(_atlas([stats_], [_reference(rng)]))
    rough = [
        np.abs(np.diff(sampler.sample("nor1", "DCM", "ED", c, s), 2, axis=0)).mean()
        for c in (True, False)
        for s in range(5)
    ]
    assert np.mean(rough[:5]) < 0.7 * np.mean(rough[5:])


def test_unknown_group_or_subject_is_a_clear_error(rng):
    sampler = PseudoPathologySampler(_atlas([_stats()], [_reference(rng)]))
    with pytest.raises(CardioInputError, match="HCM"):
        sampler.sample("nor1", "HCM", "ED")
    with pytest.raises(CardioInputError, match="nobody"):
        sampler.sample("nobody", "DCM", "ED")
    with pytest.raises(CardioInputError, match="phase"):
        sampler.sample("nor1", "DCM", "mid")


def test_ed_and_es_of_a_seed_are_one_heart(rng):
    """Both phases share the correlated draw: with ES stats = ED stats + 2, ES = ED + 2."""
    ed = _stats(dim_kendall=np.full((NZ, NZ), 0.6) + 0.4 * np.eye(NZ))
    es = _stats(mean=2.0, dim_kendall=np.eye(NZ))
    es = GroupStats("DCM", "ES", es.mean, es.std, es.min, es.max, 5, es.dim_kendall)
    ref = _reference(rng)
    ref = ReferenceSubject(
        "nor1",
        "NOR",
        {"ED": ref.codes["ED"], "ES": rng.normal(size=(N_SLICES, NZ))},
        {"ED": ref.geometry["ED"], "ES": ref.geometry["ED"]},
    )
    sampler = PseudoPathologySampler(_atlas([ed, es], [ref]))
    for seed in range(3):
        first = sampler.sample("nor1", "DCM", "ED", True, seed)
        second = sampler.sample("nor1", "DCM", "ES", True, seed)
        np.testing.assert_allclose(second - first, 2.0, atol=1e-9)
    # an atlas without ED statistics for the group still samples ES with its own
    alone = PseudoPathologySampler(_atlas([es], [ref])).sample("nor1", "DCM", "ES", True, 0)
    assert np.all(np.isfinite(alone))
