"""Subject splits: a fixed stratified rule, ids only, clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.split import read_split, stratified_split, write_split

REPO_SPLIT = Path(__file__).resolve().parents[2] / "docs" / "acdc_split.json"
VALIDATION_SPLIT = REPO_SPLIT.with_name("utility_val_split.json")


def test_stratified_split_holds_out_every_fourth_id_of_each_group():
    groups = {f"p{i:03d}": ("NOR" if i % 2 else "DCM") for i in range(16)}
    split = stratified_split(groups)
    assert len(split["held_out"]) == 4
    assert len(split["train"]) == 12
    assert set(split["train"]).isdisjoint(split["held_out"])
    nor = sorted(s for s, g in groups.items() if g == "NOR")
    assert {nor[3], nor[7]} <= set(split["held_out"])
    assert stratified_split(dict(reversed(groups.items()))) == split  # order-free


def test_the_repository_split_is_12_plus_4_per_group(acdc_dir):
    from cardio_explorer.engine.io.acdc import read_info_cfg

    train, held = read_split(REPO_SPLIT, "train"), read_split(REPO_SPLIT, "held_out")
    groups = {p.name: read_info_cfg(p / "Info.cfg")["Group"] for p in acdc_dir.glob("patient*")}
    assert stratified_split(groups) == {"train": train, "held_out": held}
    for group in set(groups.values()):
        assert sum(groups[s] == group for s in held) == 4


def test_the_utility_validation_split_never_touches_the_held_out_subjects():
    train, held = read_split(REPO_SPLIT, "train"), read_split(REPO_SPLIT, "held_out")
    scarce, rest = read_split(VALIDATION_SPLIT, "train"), read_split(VALIDATION_SPLIT, "held_out")
    assert (len(scarce), len(rest)) == (20, 40)
    # the scarce 20 and the other 40 partition the training part: variants are chosen there
    assert sorted(scarce + rest) == sorted(train)
    assert not set(scarce + rest) & set(held)


def test_the_scarce_set_of_the_validation_split_is_the_utility_scarce_set(acdc_dir):
    from cardio_explorer.engine.utility.data import choose_scarce, subjects_with_images

    subjects, _ = subjects_with_images(acdc_dir, read_split(REPO_SPLIT, "train"))
    chosen = {s.subject_id for s in choose_scarce(subjects, 12, 2)}
    assert chosen == set(read_split(VALIDATION_SPLIT, "train"))


def test_write_and_read_back(tmp_path):
    path = write_split(tmp_path / "s.json", {"train": ["b", "a"], "held_out": ["c"]}, "test")
    assert read_split(path, "train") == ["a", "b"]
    assert json.loads(path.read_text())["rule"] == "test"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("not json", "cannot read"),
        (json.dumps({"train": []}), "non-empty list"),
        (json.dumps({"train": ["a"], "held_out": ["a"]}), "both in train and held_out"),
    ],
)
def test_bad_split_files(tmp_path, body, match):
    path = tmp_path / "s.json"
    path.write_text(body)
    with pytest.raises(CardioInputError, match=match):
        read_split(path, "train")
