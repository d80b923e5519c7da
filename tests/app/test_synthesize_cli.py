"""``cardio-explorer synthesize`` on a tiny label VAE: files, manifest, shards and bad arguments."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from synthesize_helpers import read_manifest
from tiny_models import tiny_label_vae_checkpoint, tiny_spade_checkpoint, write_tiny_cohort

from cardio_explorer.app.cli import main
from cardio_explorer.app.commands.synthesize import parse_alphas, parse_seeds, parse_shard
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.writers import MANIFEST_COLUMNS
from cardio_explorer.engine.io.nifti import (
    read_image_volume,
    read_label_volume,
    write_image_volume,
)
from cardio_explorer.engine.nn.checkpoint import file_sha256
from cardio_explorer.engine.volume import ImageVolume


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cohort = write_tiny_cohort(tmp_path_factory.mktemp("cohort"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return tiny_label_vae_checkpoint(cohort, path, balanced=True)


def synthesize(checkpoint, out, *extra: str) -> int:
    argv = ["synthesize", "--checkpoint", str(checkpoint), "--out", str(out)]
    return main([*argv, "--device", "cpu", "--no-progress", *extra])


def test_writes_files_labels_and_manifest(checkpoint, tmp_path, capsys):
    out = tmp_path / "data"
    code = synthesize(checkpoint, out, "--groups", "DCM,HCM", "--seeds", "0-1", "--alphas", "0,1")
    assert code == 0
    # 2 NOR sources x 2 groups x 2 seeds x 2 alphas, ED and ES each
    files = sorted(p.name for p in out.glob("*.nii.gz"))
    assert len(files) == 2 * 2 * 2 * 2 * 2
    assert "p2_HCM_s1_a100_ES_gt.nii.gz" in files
    assert (out / "labels.txt").is_file()
    rows = read_manifest(out / "manifest.csv")
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert len(rows) == 16
    assert sorted([r["file_ed"] for r in rows] + [r["file_es"] for r in rows]) == files
    assert {r["correlated"] for r in rows} == {"True"}
    for row in rows[:2]:
        labels = read_label_volume(out / row["file_ed"], acdc_labels=True)
        assert labels.spatial_shape[0] == 32
    out_text = capsys.readouterr().out.strip().splitlines()
    assert len(out_text) == 1
    assert out_text[0].startswith("wrote 32 files for 16 morphs and manifest.csv to ")
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["command"].startswith("cardio-explorer synthesize --checkpoint ")
    assert provenance["label_vae_sha256"] == file_sha256(checkpoint)
    assert provenance["precision"] in ("fp32", "bf16")
    assert provenance["groups"] == ["DCM", "HCM"]
    assert provenance["seeds"] == [0, 1]
    assert provenance["alphas"] == [0.0, 1.0]
    assert provenance["correlated"] is True
    assert provenance["n_jobs"] == 16


def test_shards_split_the_work_without_overlap(checkpoint, tmp_path, capsys):
    common = ("--groups", "DCM", "--seeds", "3", "--steps", "3", "--uncorrelated")
    names = []
    for k in (1, 2):
        out = tmp_path / f"shard{k}"
        assert synthesize(checkpoint, out, *common, "--shard", f"{k}/2") == 0
        rows = read_manifest(out / f"manifest-{k}-of-2.csv")
        assert not (out / "manifest.csv").exists()
        assert json.loads((out / f"provenance-{k}-of-2.json").read_text())["shard"] == [k, 2]
        assert {r["correlated"] for r in rows} == {"False"}
        names += [r["file_ed"] for r in rows]
        assert sorted(p.name for p in out.glob("*_ED_gt.nii.gz")) == sorted(
            r["file_ed"] for r in rows
        )
    assert len(names) == len(set(names)) == 2 * 3  # 2 sources x 3 alphas
    assert {n.split("_a")[1][:3] for n in names} == {"000", "050", "100"}
    assert "(shard 2/2 of 6)" in capsys.readouterr().out


def test_acdc_labels_by_default_and_one_phase(checkpoint, tmp_path):
    out = tmp_path / "acdc"
    extra = ("--groups", "HCM", "--subjects", "p1", "--seeds", "0", "--alphas", "1")
    assert synthesize(checkpoint, out, *extra, "--phases", "ED") == 0
    (row,) = read_manifest(out / "manifest.csv")
    assert row["file_ed"] == "p1_HCM_s0_a100_ED_gt.nii.gz"
    assert row["file_es"] == ""
    assert float(row["lvedv_ml"]) >= 0.0
    assert sorted(p.name for p in out.iterdir()) == [
        ".plan-sha256",
        "labels.txt",
        "manifest.csv",
        "p1_HCM_s0_a100_ED_gt.nii.gz",
        "plan.toml",
        "provenance.json",
    ]
    assert row["label_values"] == "acdc"
    table = (out / "labels.txt").read_text().splitlines()
    assert table[-3].split()[0] == "1"
    assert table[-3].endswith('"RV blood pool"')  # ACDC numbering: 1 is the RV


def test_existing_output_is_refused_without_overwrite(checkpoint, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    extra = ("--groups", "DCM", "--subjects", "p1", "--seeds", "0", "--alphas", "0")
    assert synthesize(checkpoint, out, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "not empty" in err[0]
    assert "--overwrite" in err[0]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert synthesize(checkpoint, out, *extra, "--overwrite") == 0
    assert not (out / "keep.txt").exists()
    assert (out / "manifest.csv").is_file()


@pytest.mark.parametrize(
    ("args", "flag", "text"),
    [
        (["--groups", "XYZ"], "--groups", "unknown group 'XYZ'"),
        (["--groups", "MINF"], "--groups", "not in the latent atlas"),
        (["--alphas", "0,1.5"], "--alphas", "[0, 1]"),
        (["--alphas", "0,half"], "--alphas", "not a number"),
        (["--steps", "1"], "--steps", "between 2 and 101"),
        (["--steps", "500"], "--steps", "between 2 and 101"),
        (["--shard", "0/2"], "--shard", "1 <= K <= N"),
        (["--shard", "3/2"], "--shard", "1 <= K <= N"),
        (["--shard", "two"], "--shard", "expected K/N"),
        (["--subjects", "p1,p9"], "--subjects", "unknown id 'p9'"),
        (["--seeds", "5-2"], "--seeds", "first <= last"),
        (["--seeds", "0,x"], "--seeds", "not a seed"),
        (["--seeds", "0-3,2"], "--seeds", "twice"),
        (["--phases", "ED,MID"], "--phases", "subset"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(checkpoint, tmp_path, capsys, args, flag, text):
    out = tmp_path / "never"
    assert synthesize(checkpoint, out, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"cardio-explorer synthesize: error: {flag}: ")
    assert text in err[0]
    assert list(tmp_path.iterdir()) == []


def test_missing_bundled_checkpoint_says_how_to_train(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        "cardio_explorer.resources.bundled_checkpoint", lambda kind: tmp_path / "none.safetensors"
    )
    assert main(["synthesize", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "bundled label VAE" in err[0]
    assert "cardio-explorer train label-vae" in err[0]


def test_parsers():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_alphas(None, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_alphas("0,0.3", None) == [0.0, 0.3]
    assert parse_alphas(None, None) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_shard("2/4") == (2, 4)
    assert parse_shard(None) == (1, 1)
    with pytest.raises(CardioInputError, match="expected a comma-separated list"):
        parse_seeds("0,,1")


def test_print_plan_round_trips_through_plan_files(checkpoint, tmp_path, capsys):
    argv = ["synthesize", "--checkpoint", str(checkpoint), "--print-plan", "--groups", "HCM"]
    assert main([*argv, "--seeds", "0-3,9", "--steps", "3", "--labels", "app"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# cardio-explorer synthesis plan (30 cases)")
    assert 'seeds = "0-3,9"' in text
    assert 'groups = ["HCM"]' in text
    assert not list(tmp_path.iterdir())  # printing does no work
    plan = tmp_path / "plan.toml"
    plan.write_text(text.replace('seeds = "0-3,9"', 'seeds = "2"'))
    out = tmp_path / "data"
    # a flag given on top of the plan file wins
    assert synthesize(checkpoint, out, "--plan", str(plan), "--alphas", "1") == 0
    rows = read_manifest(out / "manifest.csv")
    assert [(r["subject"], r["group"], r["seed"], r["alpha"]) for r in rows] == [
        ("p1", "HCM", "2", "1.0"),
        ("p2", "HCM", "2", "1.0"),
    ]
    assert {r["label_values"] for r in rows} == {"app"}
    assert (out / "plan.toml").read_text().count("alphas = [1.0]") == 1


def test_a_bad_plan_file_names_the_file_and_the_field(checkpoint, tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    plan.write_text('[morphs]\ngroups = ["XYZ"]\n')
    out = tmp_path / "never"
    assert synthesize(checkpoint, out, "--plan", str(plan)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{plan}: groups: unknown group 'XYZ'" in err[0]
    assert not out.exists()
    assert synthesize(checkpoint, out, "--layout", "nnunet") == 2
    assert "--layout: nnunet needs images" in capsys.readouterr().err
    assert not out.exists()


def test_images_in_the_acdc_layout(checkpoint, tmp_path):
    spade = tiny_spade_checkpoint(tmp_path / "spade.safetensors")
    out = tmp_path / "acdc"
    extra = ("--groups", "DCM", "--subjects", "p2", "--seeds", "0", "--alphas", "1")
    argv = ("--images", "--spade-checkpoint", str(spade), "--layout", "acdc", "--workers", "2")
    assert synthesize(checkpoint, out, *extra, *argv) == 0
    case = out / "p2_DCM_s0_a100"
    assert sorted(p.name for p in case.iterdir()) == [
        "Info.cfg",
        "p2_DCM_s0_a100_frame01.nii.gz",
        "p2_DCM_s0_a100_frame01_gt.nii.gz",
        "p2_DCM_s0_a100_frame02.nii.gz",
        "p2_DCM_s0_a100_frame02_gt.nii.gz",
    ]
    image = read_image_volume(case / "p2_DCM_s0_a100_frame01.nii.gz")
    labels = read_label_volume(case / "p2_DCM_s0_a100_frame01_gt.nii.gz", acdc_labels=True)
    assert image.data.shape == labels.data.shape
    assert image.data.std() > 0
    (row,) = read_manifest(out / "manifest.csv")
    assert row["spade_sha256"] == file_sha256(spade)
    assert row["image_es"] == "p2_DCM_s0_a100/p2_DCM_s0_a100_frame02.nii.gz"


def test_images_in_each_reference_subjects_own_style(checkpoint, tmp_path, capsys):
    cohort = write_tiny_cohort(tmp_path / "cohort")
    spade = tiny_spade_checkpoint(tmp_path / "spade.safetensors")
    extra = ("--groups", "DCM", "--seeds", "0", "--alphas", "1", "--images")
    extra += ("--spade-checkpoint", str(spade), "--style-from", str(cohort))
    # the tiny cohort has labels only: one clear error before any work
    assert synthesize(checkpoint, tmp_path / "never", *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "p1" in err[0]
    assert not (tmp_path / "never").exists()
    rng = np.random.default_rng(0)
    for (sid, brightness), frame in itertools.product((("p1", 0.2), ("p2", 0.9)), (1, 8)):
        stem = cohort / sid / f"{sid}_frame{frame:02d}"
        labels = read_label_volume(f"{stem}_gt.nii.gz", acdc_labels=True)
        data = brightness * (labels.data > 0) + 0.05 * rng.standard_normal(labels.data.shape)
        image = ImageVolume(data=data.astype(np.float32), affine=labels.affine)
        write_image_volume(image, f"{stem}.nii.gz")
    out = tmp_path / "own"
    assert synthesize(checkpoint, out, *extra) == 0
    rows = read_manifest(out / "manifest.csv")
    assert {(r["style"], r["style_seed"]) for r in rows} == {("reference", "")}
    seeded = tmp_path / "seeded"
    assert synthesize(checkpoint, seeded, *extra[:-2]) == 0
    assert {r["style"] for r in read_manifest(seeded / "manifest.csv")} == {"seed"}
    own = [read_image_volume(out / r["file_ed"].replace("_gt", "")).data for r in rows]
    assert not np.allclose(
        own[0], read_image_volume(seeded / rows[0]["file_ed"].replace("_gt", "")).data
    )
    assert json.loads((out / "provenance.json").read_text())["style_from"] == str(cohort)
