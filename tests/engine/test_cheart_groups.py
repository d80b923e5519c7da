"""CHeart generation by group: the asked group's prior component is the one used, the draw stays
reproducible, and a group the model cannot generate is one clear error."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tiny_models import grouped_prior

from cardio_explorer.engine.cheart.draws import frame0_latents, prior_draw
from cardio_explorer.engine.cheart.groups import (
    GROUP_CHOICES,
    group_index,
    model_groups,
    parse_group,
)
from cardio_explorer.engine.cheart.inference import (
    condition_sweep,
    generate_sequences,
    population_curves,
)
from cardio_explorer.engine.cheart.prior import fit_latent_prior
from cardio_explorer.engine.cheart.toy import random_model
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import GROUPS


@pytest.fixture(scope="module")
def plain():
    return random_model(seed=0)


@pytest.fixture(scope="module")
def model(plain):
    return dataclasses.replace(plain, prior=grouped_prior(plain.config.z_dim, seed=1))


@pytest.fixture(scope="module")
def conditions(plain):
    return plain.stats.typical("F", age=50.0)


def _expected_z0(model, conditions, n, seed, component):
    """W c + b_g + L_g e for the seed's normals e: the prior's component ``component``."""
    noise = prior_draw(model, n, seed).noise
    matrix = model.stats.matrix([conditions] * n)
    prior = model.prior
    return (
        matrix @ prior.weights.T + prior.intercepts[component] + noise @ prior.factors[component].T
    )


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_uses_its_own_component(model, conditions, group):
    index = model.prior.groups.index(group)
    results = generate_sequences(model, conditions, n_samples=3, seed=5, group=group)
    z0 = np.stack([r.latents[0] for r in results])
    np.testing.assert_allclose(z0, _expected_z0(model, conditions, 3, 5, index), atol=1e-4)
    for other in range(len(model.prior.groups)):
        if other != index:  # the component means lie far apart: no other one fits
            far = _expected_z0(model, conditions, 3, 5, other)
            assert np.abs(z0 - far).max() > 1.0


def test_same_seed_and_group_same_heart_and_groups_differ(model, conditions):
    a = generate_sequences(model, conditions, n_samples=2, seed=9, group="nor")
    b = generate_sequences(model, conditions, n_samples=2, seed=9, group="NOR")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.labels.data, y.labels.data)
    dcm = generate_sequences(model, conditions, n_samples=2, seed=9, group="DCM")
    assert not np.array_equal(a[0].labels.data, dcm[0].labels.data)


def test_no_group_draws_the_component_from_the_conditions(model, conditions):
    results = generate_sequences(model, conditions, n_samples=40, seed=3)
    draw = prior_draw(model, 40, 3)
    chosen = model.prior.choose(draw.uniforms, model.stats.matrix([conditions] * 40))
    assert len(set(chosen.tolist())) > 1  # a mix of groups, as before this option
    expected = frame0_latents(model, draw, [conditions] * 40, chosen)
    np.testing.assert_allclose(np.stack([r.latents[0] for r in results]), expected, atol=1e-4)
    again = generate_sequences(model, conditions, n_samples=40, seed=3, group="any")
    np.testing.assert_array_equal(results[7].latents, again[7].latents)


def test_a_sweep_keeps_the_asked_component(model, conditions):
    sweep = condition_sweep(model, conditions, "age", [30, 70], seed=2, group="HCM")
    index = model.prior.groups.index("HCM")
    for result in sweep:
        expected = _expected_z0(model, result.conditions, 1, 2, index)[0]
        np.testing.assert_allclose(result.latents[0], expected, atol=1e-4)
    with pytest.raises(CardioInputError, match="group: a sweep of a given z"):
        condition_sweep(model, conditions, "age", [30], z=np.zeros(model.config.z_dim), group="NOR")


def test_population_curves_of_one_group(model, conditions):
    nor = population_curves(
        model, "age", [50.0], n_per_step=3, sexes=("F",), base=conditions, group="NOR"
    )
    same = population_curves(
        model, "age", [50.0], n_per_step=3, sexes=("F",), base=conditions, group="NOR"
    )
    dcm = population_curves(
        model, "age", [50.0], n_per_step=3, sexes=("F",), base=conditions, group="DCM"
    )
    assert nor["curves"] == same["curves"]
    assert nor["curves"]["F"]["lvedv_ml"] != dcm["curves"]["F"]["lvedv_ml"]


def test_an_unknown_group_names_itself_and_the_choices(model, conditions):
    with pytest.raises(CardioInputError) as error:
        generate_sequences(model, conditions, group="XYZ")
    assert error.value.thing == "group"
    assert "'XYZ'" in error.value.problem
    assert all(choice in error.value.problem for choice in GROUP_CHOICES)


def test_a_group_the_prior_lacks_is_refused(plain, model, conditions):
    with pytest.raises(CardioInputError, match=r"group: 'NOR': .*no groups.*any"):
        generate_sequences(plain, conditions, group="NOR")  # no prior at all
    z = np.random.default_rng(0).normal(size=(30, plain.config.z_dim))
    one = dataclasses.replace(
        plain, prior=fit_latent_prior(z, np.random.default_rng(1).normal(size=(30, 5)))
    )
    assert model_groups(one) == ()
    with pytest.raises(CardioInputError, match="no groups"):
        condition_sweep(one, conditions, "age", [40], group="DCM")
    rng = np.random.default_rng(2)
    without_arv = [g for g in ("DCM", "HCM", "MINF", "NOR") for _ in range(8)]
    four = dataclasses.replace(
        plain,
        prior=fit_latent_prior(
            rng.normal(size=(32, plain.config.z_dim)), rng.normal(size=(32, 5)), without_arv
        ),
    )
    assert model_groups(four) == ("DCM", "HCM", "MINF", "NOR")
    with pytest.raises(CardioInputError, match=r"'ARV': .*no such component.*'DCM'"):
        group_index(four, "ARV")
    # no prior, no group: the model's own N(0, I) draw, as before
    assert generate_sequences(plain, conditions, seed=1, group=None)[0].latents.shape[0] > 0


def test_parse_group():
    assert parse_group(None) is None
    assert parse_group(" Any ") is None
    assert parse_group("minf") == "MINF"
    with pytest.raises(CardioInputError, match="group: 'normal' is unknown"):
        parse_group("normal")
