"""Kendall matrices, their Pearson equivalent and the positive-definite repair never crash."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cardio_explorer.engine.label_vae.correlation import (
    cholesky_factor,
    cholesky_from_kendall,
    kendall_matrix,
    pearson_from_kendall,
    repair_correlation,
)


def _is_pd(c):
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        return False
    return True


@pytest.mark.parametrize("n_samples", [16, 400])  # dense formula and scipy per pair
def test_kendall_matrix_matches_scipy_with_ties(rng, n_samples):
    x = rng.integers(0, 6, size=(n_samples, 4)).astype(float)  # many ties: tau-b matters
    tau = kendall_matrix(x)
    for i in range(4):
        for j in range(4):
            expected = 1.0 if i == j else stats.kendalltau(x[:, i], x[:, j]).statistic
            assert tau[i, j] == pytest.approx(expected, abs=1e-12)


def test_constant_column_gives_zero_correlation(rng):
    x = rng.normal(size=(20, 3))
    x[:, 1] = 2.5
    tau = kendall_matrix(x)
    assert np.all(np.isfinite(tau))
    assert tau[1, 0] == 0.0
    assert tau[1, 2] == 0.0
    assert tau[1, 1] == 1.0


def test_kendall_of_too_few_samples_is_identity():
    np.testing.assert_array_equal(kendall_matrix(np.ones((1, 3))), np.eye(3))


def test_pearson_equivalent_of_kendall():
    rho = pearson_from_kendall(np.array([[1.0, 1 / 3], [np.nan, 1.0]]))
    assert rho[0, 1] == pytest.approx(0.5)
    assert rho[1, 0] == 0.0


def test_positive_definite_input_is_returned_unchanged():
    c = np.array([[1.0, 0.3], [0.3, 1.0]])
    out = repair_correlation(c)
    assert not out.was_repaired
    np.testing.assert_array_equal(out.matrix, c)


@pytest.mark.parametrize(
    "c",
    [
        np.ones((4, 4)),  # singular: perfectly correlated
        np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]),  # indefinite
        np.array([[1.0, np.nan, 0.2], [np.nan, 1.0, 0.1], [0.2, 0.1, np.nan]]),
        np.array([[1.0, 1.5], [-0.2, 1.0]]),  # asymmetric, out of range
    ],
    ids=["singular", "indefinite", "nan", "asymmetric"],
)
def test_repair_gives_a_correlation_matrix(c):
    out = repair_correlation(c)
    assert out.was_repaired
    assert _is_pd(out.matrix)
    np.testing.assert_allclose(np.diag(out.matrix), 1.0)
    np.testing.assert_allclose(out.matrix, out.matrix.T)
    assert np.all(np.abs(out.matrix) <= 1.0 + 1e-12)


def test_repair_stays_close_to_a_nearly_valid_matrix():
    c = np.full((5, 5), 0.999)
    np.fill_diagonal(c, 1.0)
    c[0, 4] = c[4, 0] = 0.2  # makes it indefinite
    out = repair_correlation(c).matrix
    assert _is_pd(out)
    assert np.abs(out - c)[1:4, 1:4].max() < 0.05


def test_slice_correlation_from_few_dimensions_is_psd_and_keeps_neighbours(rng):
    # Smooth stack of 32 slices over 16 dimensions: rank-deficient, neighbours nearly equal.
    from cardio_explorer.engine.label_vae.sampling import slice_correlation

    codes = np.cumsum(rng.normal(size=(32, 16)), axis=0)
    c = slice_correlation(codes)
    assert np.linalg.eigvalsh(c)[0] > -1e-9
    np.testing.assert_allclose(c, np.corrcoef(codes), atol=1e-12)
    factor = cholesky_factor(c)
    repaired = factor @ factor.T
    np.testing.assert_allclose(np.diag(repaired, 1), np.diag(c, 1), atol=1e-4)
    # A constant slice correlates with nothing instead of giving NaN.
    codes[3] = 1.0
    assert np.all(np.isfinite(slice_correlation(codes)))


def test_slice_kendall_from_few_dimensions_factorises(rng):
    # 32 slices correlated over only 16 latent dimensions: rank-deficient, the common case.
    codes = np.cumsum(rng.normal(size=(32, 16)), axis=0)
    tau = kendall_matrix(codes.T)
    factor = cholesky_from_kendall(tau)
    assert factor.shape == (32, 32)
    np.testing.assert_allclose(np.sum(factor**2, axis=1), 1.0, atol=1e-9)
