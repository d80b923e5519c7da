"""``synthesize --conditions-grid/-csv --group``: the hearts come from the asked group's prior
component (the CSV's group column per row), and the manifest and Info.cfg name the component
each heart came from."""

from __future__ import annotations

import numpy as np
import pytest
from synthesize_helpers import read_manifest as rows_of
from synthesize_helpers import synthesize_sequences as synthesize
from tiny_models import tiny_cheart_checkpoint

from cardio_explorer.app.cli import main
from cardio_explorer.engine.cheart.draws import prior_draw
from cardio_explorer.engine.cheart.inference import generate_sequences
from cardio_explorer.engine.cheart.model import load_model
from cardio_explorer.engine.io.acdc import read_info_cfg
from cardio_explorer.engine.io.nifti import read_label_volume


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    return tiny_cheart_checkpoint(tmp_path_factory.mktemp("c") / "grouped.safetensors", groups=True)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return tiny_cheart_checkpoint(tmp_path_factory.mktemp("c") / "plain.safetensors")


def _labels(out, row):
    return read_label_volume(out / row["file_labels"], acdc_labels=True).data


def test_group_picks_the_component_of_every_heart(grouped, tmp_path):
    out = tmp_path / "hcm"
    grid = ("--conditions-grid", "age=40,70;sex=M", "--seeds", "2-3")
    assert synthesize(grouped, out, *grid, "--group", "hcm") == 0
    rows = rows_of(out / "manifest.csv")
    assert [r["group"] for r in rows] == ["HCM"] * 4
    model = load_model(grouped)
    for row in rows:
        c = model.stats.typical("M", age=float(row["age"]))
        made = generate_sequences(model, c, 1, seed=int(row["seed"]), group="HCM")[0]
        np.testing.assert_array_equal(_labels(out, row), made.labels.data)
    other = generate_sequences(model, model.stats.typical("M", age=40.0), 1, 2, group="NOR")[0]
    assert not np.array_equal(_labels(out, rows[0]), other.labels.data)


def test_without_group_the_manifest_names_the_drawn_component(grouped, tmp_path):
    out = tmp_path / "any"
    assert synthesize(grouped, out, "--conditions-grid", "age=50;sex=F", "--seeds", "0-7") == 0
    model = load_model(grouped)
    c = model.stats.typical("F", age=50.0)
    rows = rows_of(out / "manifest.csv")
    drawn = []
    for row in rows:
        draw = prior_draw(model, 1, int(row["seed"]))
        index = model.prior.choose(draw.uniforms, model.stats.matrix([c]))[0]
        drawn.append(model.prior.groups[index])
        made = generate_sequences(model, c, 1, seed=int(row["seed"]))[0]
        np.testing.assert_array_equal(_labels(out, row), made.labels.data)
    assert [r["group"] for r in rows] == drawn
    assert len(set(drawn)) > 1  # a mix, so the column is not a constant by chance


def test_the_csv_group_column_picks_the_component_and_goes_to_info_cfg(grouped, tmp_path):
    table = tmp_path / "conditions.csv"
    table.write_text(
        "subject,group,age,sex,height,weight,sbp\nann,DCM,35,F,165,60,115\nbo,,62,M,180,85,140\n"
    )
    out = tmp_path / "acdc"
    extra = ("--conditions-csv", str(table), "--layout", "acdc", "--seeds", "0")
    assert synthesize(grouped, out, *extra, "--group", "NOR") == 0
    assert read_info_cfg(out / "ann_s0" / "Info.cfg")["Group"] == "DCM"
    assert read_info_cfg(out / "bo_s0" / "Info.cfg")["Group"] == "NOR"  # from --group
    rows = rows_of(out / "manifest.csv")
    assert [r["group"] for r in rows] == ["DCM", "NOR"]
    model = load_model(grouped)
    ann = generate_sequences(
        model,
        {"age": 35, "sex": "F", "height": 165, "weight": 60, "sbp": 115},
        1,
        seed=0,
        group="DCM",
    )[0]
    written = read_label_volume(out / "ann_s0" / "ann_s0_4d_gt.nii.gz", acdc_labels=True)
    np.testing.assert_array_equal(written.data, ann.labels.data)


@pytest.mark.parametrize(
    ("model", "extra", "text"),
    [
        ("grouped", ["--group", "normal"], "--group: 'normal' is unknown; choose one of NOR"),
        ("plain", ["--group", "NOR"], "--group: 'NOR': this CHeart model's prior has no groups"),
        ("plain", ["--conditions-csv", "CSV"], "ann: group: 'DCM': this CHeart model's prior"),
    ],
)
def test_a_group_the_model_cannot_make_is_one_line(request, tmp_path, capsys, model, extra, text):
    table = tmp_path / "conditions.csv"
    table.write_text("subject,group,age,sex,height,weight,sbp\nann,DCM,35,F,165,60,115\n")
    extra = [str(table) if e == "CSV" else e for e in extra]
    if "--conditions-csv" not in extra:
        extra = ["--conditions-grid", "age=40", *extra]
    out = tmp_path / "never"
    assert synthesize(request.getfixturevalue(model), out, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert text in err[0]
    assert not out.exists()


def test_group_is_for_sequences_only(tmp_path, capsys):
    assert main(["synthesize", "--out", str(tmp_path / "m"), "--group", "NOR"]) == 2
    assert "--group: is for 4D sequences" in capsys.readouterr().err
