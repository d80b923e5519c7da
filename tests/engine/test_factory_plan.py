"""The dataset factory's plan: cases by index, ranks and shards, TOML round trip, bad plans."""

from __future__ import annotations

import pytest
from tiny_models import tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.morphs import (
    SynthesisJob,
    alpha_tag,
    check_plan_size,
    plan_jobs,
)
from cardio_explorer.engine.factory.plan import Plan, parse_seed_spec, read_plan
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.limits import MAX_PLAN_CASES


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    cohort = write_tiny_cohort(tmp_path_factory.mktemp("cohort"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return PathologyMorph.from_checkpoint(tiny_label_vae_checkpoint(cohort, path)).atlas


def test_cases_by_index_follow_the_fixed_order(atlas):
    plan = Plan(seeds=(0, 3, 5), alphas=(0.0, 0.5, 1.0)).resolve(atlas)
    # the tiny atlas has NOR sources p1, p2 and pathology groups DCM, HCM
    assert plan.n_cases == 2 * 2 * 3 * 3
    cases = [plan.case(i) for i in range(plan.n_cases)]
    assert cases == plan_jobs(atlas, seeds=[0, 3, 5], alphas=[0.0, 0.5, 1.0])
    assert cases[0] == SynthesisJob("p1", "DCM", 0, 0.0, True)
    assert cases[-1] == SynthesisJob("p2", "HCM", 5, 1.0, True)
    assert len({c.stem for c in cases}) == len(cases)
    with pytest.raises(IndexError):
        plan.case(plan.n_cases)


@pytest.mark.parametrize("world", [1, 2, 3, 7, 40])
def test_ranks_take_disjoint_units_that_cover_the_plan(atlas, world):
    plan = Plan(seeds=(0, 1, 2), alphas=(0.0, 1.0)).resolve(atlas)
    shares = [list(plan.units_of(rank, world)) for rank in range(world)]
    units = [u for share in shares for u in share]
    assert sorted(units) == list(range(plan.n_units))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_style_seeds_depend_on_the_plan_and_unit_only(atlas):
    plan = Plan(seeds=(0, 1), images=True, layout="nnunet").resolve(atlas)
    again = Plan(seeds=(0, 1), images=True, layout="nnunet").resolve(atlas)
    seeds = [plan.style_seed(u) for u in range(plan.n_units)]
    assert seeds == [again.style_seed(u) for u in range(plan.n_units)]
    assert len(set(seeds)) == len(seeds)
    other = Plan(seeds=(0, 2), images=True, layout="nnunet").resolve(atlas)
    assert other.sha256 != plan.sha256


def test_toml_round_trip_gives_the_same_plan(atlas, tmp_path):
    plan = Plan(
        groups=("HCM",), seeds=(0, 1, 2, 7), alphas=(0.0, 0.25, 1.0), layout="nnunet", images=True
    ).resolve(atlas)
    path = tmp_path / "plan.toml"
    path.write_text(plan.to_toml())
    assert 'seeds = "0-2,7"' in path.read_text()
    back = read_plan(path).resolve(atlas)
    assert back.plan == plan.plan
    assert back.sha256 == plan.sha256


@pytest.mark.parametrize(
    ("text", "thing", "problem"),
    [
        ("[morphs\n", "plan.toml", "not valid TOML"),
        ("[extra]\nx = 1\n", "plan.toml", "unknown table [extra]"),
        ("[morphs]\nseed = 1\n", "plan.toml [morphs]", "unknown key 'seed'"),
        ("[morphs]\nseeds = [1, true]\n", "plan.toml [morphs]: seeds", "whole numbers"),
        ('[morphs]\nseeds = "4-2"\n', "plan.toml [morphs]: seeds", "first <= last"),
        ('[morphs]\nalphas = ["a"]\n', "plan.toml [morphs]: alphas", "numbers in [0, 1]"),
        ("[output]\nimages = 1\n", "plan.toml [output]: images", "true or false"),
    ],
)
def test_bad_plan_files_give_one_clear_error(tmp_path, text, thing, problem):
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(CardioInputError) as info:
        read_plan(path)
    assert str(info.value.thing).endswith(thing)
    assert problem in info.value.problem


@pytest.mark.parametrize(
    ("fields", "thing", "text"),
    [
        ({"groups": ("XYZ",)}, "groups", "unknown group"),
        ({"groups": ("MINF",)}, "groups", "not in the latent atlas"),
        ({"groups": ("DCM", "dcm")}, "groups", "twice"),
        ({"subjects": ("p3",)}, "subjects", "unknown id 'p3'"),  # a DCM subject is no source
        ({"seeds": (1, 1)}, "seeds", "twice"),
        ({"alphas": (0.5, 1.5)}, "alpha", r"\[0, 1\]"),
        ({"alphas": (0.5, 0.501)}, "alphas", "file tag a050"),
        ({"phases": ("MID",)}, "phases", "subset"),
        ({"layout": "nnunet"}, "layout", "needs images"),
        ({"layout": "tree"}, "layout", "one of"),
        ({"labels": "itk"}, "labels", "one of"),
        ({"seeds": tuple(range(100_000)), "alphas": (0.0, 0.5, 1.0)}, "seeds", "at most"),
    ],
)
def test_bad_plans_are_refused_before_any_work(atlas, fields, thing, text):
    with pytest.raises(CardioInputError, match=text) as info:
        Plan(**fields).resolve(atlas)
    assert info.value.thing == thing


def test_seed_specs_and_alpha_tags():
    assert parse_seed_spec("0-3,7") == (0, 1, 2, 3, 7)
    with pytest.raises(CardioInputError, match="at most"):
        parse_seed_spec("0-1000000000")
    assert [alpha_tag(a) for a in (0.0, 0.05, 0.25, 1.0)] == ["000", "005", "025", "100"]


def test_a_plan_over_the_case_bound_is_refused_naming_each_factor():
    """One bound for plans given by flags and by plan files: more than MAX_PLAN_CASES morphs is
    one clear error before any work."""
    check_plan_size(1, 1, MAX_PLAN_CASES, 1)
    with pytest.raises(CardioInputError, match=r"12 subjects x 4 groups x 5000 seeds x 21 alphas"):
        check_plan_size(12, 4, 5000, 21)
