"""Wasserstein and KL between phenotype samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.metrics.distributions import kl_divergence, wasserstein_1d


def test_wasserstein_of_shifted_sample_is_the_shift(rng: np.random.Generator) -> None:
    a = rng.normal(130.0, 25.0, 300)
    assert wasserstein_1d(a, a + 12.5) == pytest.approx(12.5)
    assert wasserstein_1d(a, a) == 0.0


def test_kl_zero_for_identical_grows_with_shift_and_finite_when_disjoint(
    rng: np.random.Generator,
) -> None:
    a = rng.normal(0.0, 1.0, 500)
    assert kl_divergence(a, a) == 0.0
    near = kl_divergence(a, rng.normal(0.2, 1.0, 500))
    far = kl_divergence(a, rng.normal(1.5, 1.0, 500))
    assert 0 < near < far
    disjoint = kl_divergence(np.linspace(0, 1, 50), np.linspace(10, 11, 50))
    assert math.isfinite(disjoint)
    assert disjoint > far
    assert kl_divergence([3.0, 3.0], [3.0]) == 0.0


def test_distribution_inputs_are_checked() -> None:
    with pytest.raises(CardioInputError, match="empty"):
        wasserstein_1d([], [1.0])
    with pytest.raises(CardioInputError, match="NaN"):
        kl_divergence([1.0, np.nan], [1.0])
