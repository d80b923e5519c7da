"""``cardio-explorer cohort`` end to end: options, output folder rules, group parsing."""

from __future__ import annotations

import csv
import json

import pytest

from cardio_explorer.app.cli import main
from cardio_explorer.app.commands.cohort import parse_groups
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.cohort import read_cohort


def test_cli_writes_a_readable_cohort(tmp_path):
    out = tmp_path / "cohort"
    args = "cohort --n 2 --seed 4 --groups HCM,RV --workers 1 --quiet --no-images"
    code = main([*args.split(), "--out", str(out)])
    assert code == 0
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["subject"] for r in rows] == ["patient001", "patient002"]
    assert sorted(r["group"] for r in rows) == ["ARV", "HCM"]
    columns = "subject group sex age height weight sbp bsa lvedv_ml lvesv_ml lvef rvedv_ml rvesv_ml"
    for column in [*columns.split(), "rvef", "lvm_g", "max_wall_mm"]:
        assert column in rows[0]
    meta = json.loads((out / "cohort.json").read_text())
    assert meta["seed"] == 4
    assert meta["geometry"] == "sax"
    assert meta["n"] == 2
    assert meta["groups"] == {"HCM": 0.5, "ARV": 0.5}
    assert "--seed 4" in meta["command"]
    assert "LV blood pool" in (out / "labels.txt").read_text()
    subjects = read_cohort(out, frames="all")
    assert len(subjects) == 2
    assert all(s.n_frames == 20 and len(s.labels) == 20 for s in subjects)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_refuses_an_existing_folder(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "x.txt").write_text("x")
    code = main(["cohort", "--n", "1", "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "taken" in err
    assert "--overwrite" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_cli_overwrite_replaces_the_folder(tmp_path):
    out = tmp_path / "again"
    out.mkdir()
    (out / "old.txt").write_text("old")
    args = "cohort --n 1 --no-images --workers 1 --quiet --overwrite --geometry dense"
    code = main([*args.split(), "--grid", "16,32,32", "--spacing", "8,5,5", "--out", str(out)])
    assert code == 0
    assert not (out / "old.txt").exists()
    assert (out / "patient001" / "patient001_4d_gt.nii.gz").is_file()
    assert not (out / "patient001" / "patient001_4d.nii.gz").exists()
    meta = json.loads((out / "cohort.json").read_text())
    assert meta["dense_shape"] == [16, 32, 32]
    assert meta["images"] is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOR,DCM", {"NOR": 0.5, "DCM": 0.5}),
        ("nor=3,rv=1", {"NOR": 0.75, "ARV": 0.25}),
        (
            "NOR=0.4,DCM=0.15,HCM=0.15,MINF=0.15,ARV=0.15",
            {"NOR": 0.4, "DCM": 0.15, "HCM": 0.15, "MINF": 0.15, "ARV": 0.15},
        ),
    ],
)
def test_group_mix_parsing(text, expected):
    assert parse_groups(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("NOR,XYZ", "unknown group"),
        ("NOR=1,DCM", "either"),
        ("NOR=-1", ">= 0"),
        ("NOR=0", "positive"),
        ("NOR,NOR", "twice"),
        ("NOR=abc", "not a number"),
    ],
)
def test_bad_group_mix_is_one_clear_error(text, problem):
    with pytest.raises(CardioInputError, match=problem):
        parse_groups(text)


def test_bad_options_exit_with_a_message(tmp_path, capsys):
    assert main(["cohort", "--n", "0", "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "--n" in capsys.readouterr().err
    assert main(["cohort", "--frames", "1", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    small = "cohort --geometry dense --grid 16,32,32 --spacing 2,2,2 --quiet --out"
    assert main([*small.split(), str(tmp_path / "c")]) == 2
    assert "cannot hold a heart" in capsys.readouterr().err
    tilted = "cohort --geometry dense --misalignment 2 --quiet --out"
    assert main([*tilted.split(), str(tmp_path / "d")]) == 2
    assert "sax" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
