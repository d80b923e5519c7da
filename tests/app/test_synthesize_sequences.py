"""``synthesize --conditions-grid / --conditions-csv``: 4D CHeart sequences, time last."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK
from synthesize_helpers import read_manifest as rows_of
from synthesize_helpers import synthesize_sequences as synthesize
from tiny_models import tiny_cheart_checkpoint, tiny_spade_checkpoint

from cardio_explorer.engine.cheart.inference import generate_sequences
from cardio_explorer.engine.cheart.model import load_model
from cardio_explorer.engine.io.nifti import read_image_volume, read_label_volume


@pytest.fixture(scope="module")
def cheart(tmp_path_factory):
    return tiny_cheart_checkpoint(tmp_path_factory.mktemp("cheart") / "c.safetensors")


def test_a_grid_of_conditions_gives_4d_files_with_time_last(cheart, tmp_path):
    out = tmp_path / "grid"
    assert synthesize(cheart, out, "--conditions-grid", "age=40,70;sex=M", "--seeds", "3") == 0
    rows = rows_of(out / "manifest.csv")
    assert [(r["case"], r["age"], r["sex"]) for r in rows] == [
        ("c0000_s3", "40.0", "M"),
        ("c0001_s3", "70.0", "M"),
    ]
    model = load_model(cheart)
    path = out / rows[1]["file_labels"]
    image = SimpleITK.ReadImage(str(path))
    assert image.GetDimension() == 4
    n_frames = int(rows[1]["n_frames"])
    assert image.GetSize()[3] == n_frames == model.config.n_frames
    header = nib.load(str(path)).header
    assert header.get_xyzt_units() == ("mm", "msec")
    assert header.get_zooms()[3] == pytest.approx(model.frame_duration_ms, rel=1e-5)
    assert float(rows[1]["frame_duration_ms"]) == pytest.approx(model.frame_duration_ms, abs=1e-3)
    # the labels are CHeart's for these conditions and seed (ACDC values on disk)
    conditions = model.stats.typical("M", age=70.0)
    made = generate_sequences(model, conditions, 1, seed=3)[0].labels
    read = read_label_volume(path, acdc_labels=True)
    np.testing.assert_array_equal(read.data, made.data)


def test_a_conditions_csv_with_images(cheart, tmp_path):
    table = tmp_path / "conditions.csv"
    table.write_text(
        "subject,age,sex,height,weight,sbp\nanna,35,F,165,60,115\nbob,62,M,180,85,140\n"
    )
    spade = tiny_spade_checkpoint(tmp_path / "spade.safetensors")
    out = tmp_path / "csv"
    extra = ("--conditions-csv", str(table), "--seeds", "0", "--images", "--workers", "2")
    assert synthesize(cheart, out, *extra, "--spade-checkpoint", str(spade)) == 0
    rows = rows_of(out / "manifest.csv")
    assert [r["case"] for r in rows] == ["anna_s0", "bob_s0"]
    labels = read_label_volume(out / rows[1]["file_labels"], acdc_labels=True)
    image = read_image_volume(out / rows[1]["file_images"])
    assert image.data.shape == labels.data.shape
    assert image.data.shape[-2:] == (32, 32)  # on the SPADE generator's grid
    assert image.frame_duration_ms == pytest.approx(labels.frame_duration_ms)
    assert image.data.std() > 0
    assert rows[0]["style_seed"] != rows[1]["style_seed"]


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (["--conditions-grid", "age=40", "--groups", "DCM"], "--groups: is for morphs"),
        (["--conditions-grid", "age=40", "--layout", "nnunet"], "--layout: nnunet needs images"),
        (["--conditions-grid", "mass=40"], "--conditions-grid: 'mass=40'"),
        (["--conditions-grid", "age=old"], "--conditions-grid: age: bad value"),
    ],
)
def test_bad_sequence_arguments_are_one_line(cheart, tmp_path, capsys, extra, text):
    out = tmp_path / "never"
    assert synthesize(cheart, out, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert text in err[0]
    assert not out.exists()
