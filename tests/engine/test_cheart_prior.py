"""The fitted conditional prior p(z0 | c) of CHeart: fitting, sampling, storage, use."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cardio_explorer.engine.cheart.config import TINY
from cardio_explorer.engine.cheart.draws import frame0_latents, prior_draw
from cardio_explorer.engine.cheart.inference import condition_sweep, generate_sequences
from cardio_explorer.engine.cheart.model import load_model
from cardio_explorer.engine.cheart.prior import LatentPrior, fit_latent_prior
from cardio_explorer.engine.cheart.toy import random_model, toy_subjects
from cardio_explorer.engine.errors import CardioInputError

Z, K = 6, 5


def _population(n: int = 600, seed: int = 0):
    """Latents with a known law: group B when c0 > 0 (mostly), z = W c + b_g + 0.1 e."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n, K))
    groups = np.where(c[:, 0] + 0.3 * rng.normal(size=n) > 0, "B", "A")
    weights = rng.normal(size=(Z, K))
    offsets = {"A": np.full(Z, -3.0), "B": np.full(Z, 3.0)}
    z = c @ weights.T + np.stack([offsets[g] for g in groups]) + 0.1 * rng.normal(size=(n, Z))
    return z, c, groups, weights


def test_fit_recovers_the_weights_offsets_spread_and_group_law():
    z, c, groups, weights = _population()
    prior = fit_latent_prior(z, c, groups)
    assert prior.groups == ("A", "B")
    np.testing.assert_allclose(prior.weights, weights, atol=0.03)
    np.testing.assert_allclose(prior.intercepts, [[-3.0] * Z, [3.0] * Z], atol=0.03)
    spread = np.sqrt(np.einsum("gij,gij->gi", prior.factors, prior.factors))
    np.testing.assert_allclose(spread, 0.1, rtol=0.2)
    probs = prior.component_probabilities(np.array([[2.0, 0, 0, 0, 0], [-2.0, 0, 0, 0, 0]]))
    assert probs[0, 1] > 0.95
    assert probs[1, 0] > 0.95


def test_samples_follow_the_conditions_and_the_chosen_component():
    z, c, groups, _ = _population()
    prior = fit_latent_prior(z, c, groups)
    rng = np.random.default_rng(1)
    cond = np.tile([2.0, 0, 0, 0, 0], (400, 1))
    comps = prior.choose(rng.random(400), cond)
    assert (comps == 1).mean() > 0.9  # c0 = 2 is group B
    samples = prior.sample(rng.normal(size=(400, Z)), cond, comps)
    expected = cond[0] @ prior.weights.T + prior.intercepts[1]
    np.testing.assert_allclose(samples[comps == 1].mean(axis=0), expected, atol=0.03)
    with pytest.raises(CardioInputError, match="expected"):
        prior.sample(np.zeros((2, Z + 1)), cond[:2], comps[:2])


def test_small_groups_share_one_component_and_too_few_subjects_fail():
    z, c, groups, _ = _population(n=40)
    groups = groups.copy()
    groups[:3] = "C"  # three subjects: too few for a covariance of their own
    prior = fit_latent_prior(z, c, groups)
    assert prior.groups == ("all",)
    assert prior.component_probabilities(c[:2]).tolist() == [[1.0], [1.0]]
    no_groups = fit_latent_prior(z, c, None)
    np.testing.assert_allclose(no_groups.weights, prior.weights)
    with pytest.raises(CardioInputError, match="at least 7 subjects"):
        fit_latent_prior(z[:6], c[:6])


def test_round_trip_and_malformed_priors():
    z, c, groups, _ = _population(n=100)
    prior = fit_latent_prior(z, c, groups)
    again = LatentPrior.from_dict(prior.to_dict(), Z, K)
    for field in ("weights", "intercepts", "factors", "logit_weights", "logit_bias"):
        np.testing.assert_allclose(getattr(again, field), getattr(prior, field))
    with pytest.raises(CardioInputError, match="does not fit"):
        LatentPrior.from_dict(prior.to_dict(), Z + 1, K)
    broken = prior.to_dict() | {"factors": [[float("nan")]]}
    with pytest.raises(CardioInputError, match="latent prior"):
        LatentPrior.from_dict(broken, Z, K)
    with pytest.raises(CardioInputError, match="malformed"):
        LatentPrior.from_dict({"weights": []}, Z, K)


@pytest.fixture(scope="module")
def model_with_prior(tmp_path_factory):
    """A tiny random CHeart with a prior fitted to synthetic latents, saved and loaded back."""
    model = random_model(TINY, seed=0)
    rng = np.random.default_rng(3)
    conditions = rng.normal(size=(60, K))
    latents = (
        5.0
        + conditions @ rng.normal(size=(K, TINY.z_dim))
        + 0.2 * rng.normal(size=(60, TINY.z_dim))
    )
    model = dataclasses.replace(model, prior=fit_latent_prior(latents, conditions))
    path = model.save(tmp_path_factory.mktemp("prior") / "cheart.safetensors")
    return load_model(path, "cpu")


@pytest.fixture(scope="module")
def subject():
    return toy_subjects(1, grid=(24, 24, 24), spacing_zyx=(5.0, 5.0, 5.0), n_frames=6, seed=2)[0]


def test_the_checkpoint_keeps_the_prior_and_generation_uses_it(model_with_prior, subject):
    model = model_with_prior
    assert model.prior is not None
    assert model.prior.n_subjects == 60
    draw = prior_draw(model, 200, seed=4)
    z = frame0_latents(model, draw, [subject.conditions] * 200)
    matrix = model.stats.matrix([subject.conditions])
    expected = matrix @ model.prior.weights.T + model.prior.intercepts[0]
    np.testing.assert_allclose(z.mean(axis=0), expected[0], atol=0.1)
    plain = dataclasses.replace(model, prior=None)
    np.testing.assert_array_equal(
        frame0_latents(plain, draw, [subject.conditions] * 200), draw.noise
    )
    a = generate_sequences(model, subject.conditions, n_samples=2, seed=7)
    b = generate_sequences(model, subject.conditions, n_samples=2, seed=7)
    np.testing.assert_array_equal(a[0].latents, b[0].latents)
    assert abs(a[0].latents[0].mean() - expected[0].mean()) < 1.0  # near the prior, not N(0, I)


def test_a_sweep_moves_the_prior_mean_with_the_condition(model_with_prior, subject):
    model = model_with_prior
    sweep = condition_sweep(model, subject.conditions, "age", [20, 80], seed=1)
    step = model.stats.matrix([sweep[1].conditions]) - model.stats.matrix([sweep[0].conditions])
    moved = sweep[1].latents[0] - sweep[0].latents[0]
    np.testing.assert_allclose(moved, (step @ model.prior.weights.T)[0], atol=1e-4)


def test_the_motion_part_recovers_each_groups_contraction_and_round_trips():
    """p(m | c, g): group B contracts more (m lower) than A; the fit recovers the intercepts,
    the shared weights and the spread, draws follow the chosen component, and the checkpoint
    dict keeps it (issue 19)."""
    z, c, groups, _ = _population()
    rng = np.random.default_rng(5)
    weights = np.array([[0.5, 0, 0, 0, 0], [0, 0.3, 0, 0, 0]])
    intercept = {"A": np.array([1.0, 0.5]), "B": np.array([-1.0, -0.5])}
    codes = (
        c @ weights.T + np.stack([intercept[g] for g in groups]) + 0.2 * rng.normal(size=(600, 2))
    )
    prior = fit_latent_prior(z, c, groups, codes)
    np.testing.assert_allclose(prior.motion.weights, weights, atol=0.05)
    np.testing.assert_allclose(prior.motion.intercepts, [[1.0, 0.5], [-1.0, -0.5]], atol=0.05)
    np.testing.assert_allclose(
        np.abs(np.diagonal(prior.motion.factors, axis1=1, axis2=2)), 0.2, rtol=0.25
    )
    cond = np.zeros((300, K))
    drawn = prior.motion_codes(rng.normal(size=(300, 2)), cond, np.ones(300, dtype=int))
    np.testing.assert_allclose(drawn.mean(axis=0), [-1.0, -0.5], atol=0.05)
    again = LatentPrior.from_dict(prior.to_dict(), Z, K)
    np.testing.assert_allclose(again.motion.factors, prior.motion.factors)
    assert fit_latent_prior(z, c, groups).motion_codes(drawn, cond, np.zeros(300, int)) is None
    with pytest.raises(CardioInputError, match="malformed"):
        LatentPrior.from_dict(prior.to_dict() | {"motion": {"weights": [[0.0] * K] * 2}}, Z, K)
    bad_groups = prior.to_dict() | {"motion": prior.motion.to_dict() | {"intercepts": [[0, 0]]}}
    with pytest.raises(CardioInputError, match="motion prior shapes"):
        LatentPrior.from_dict(bad_groups, Z, K)
    with pytest.raises(CardioInputError, match="motion prior"):
        fit_latent_prior(z, c, groups, codes[:, :1])
