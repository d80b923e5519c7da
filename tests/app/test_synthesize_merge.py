"""``synthesize --merge-shards DIR``: ``--shard K/2`` runs merged into the one-process dataset."""

from __future__ import annotations

import json
import shutil

import pytest
from synthesize_helpers import read_manifest as rows_of
from tiny_models import (
    tiny_cheart_checkpoint,
    tiny_label_vae_checkpoint,
    tiny_spade_checkpoint,
    write_tiny_cohort,
)

from cardio_explorer.app.cli import main

MORPHS = ("--groups", "DCM", "--seeds", "0-1", "--alphas", "0,1", "--images")
SEQUENCES = ("--conditions-grid", "age=40,55,70;sex=M", "--seeds", "0-1")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    cohort = write_tiny_cohort(folder / "cohort")
    return {
        "--checkpoint": tiny_label_vae_checkpoint(cohort, folder / "v.safetensors", balanced=True),
        "--spade-checkpoint": tiny_spade_checkpoint(folder / "s.safetensors"),
        "--cheart-checkpoint": tiny_cheart_checkpoint(folder / "c.safetensors"),
    }


def synthesize(models, *extra):
    argv = ["synthesize", "--device", "cpu", "--no-progress", "--workers", "0"]
    for flag, path in models.items():
        argv += [flag, str(path)]
    return main([*argv, *extra])


def data_files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*.nii.gz"))


def test_two_shards_copied_together_merge_into_the_whole_nnunet_dataset(models, tmp_path, capsys):
    whole = tmp_path / "whole"
    assert synthesize(models, *MORPHS, "--layout", "nnunet", "--out", str(whole)) == 0
    merged = tmp_path / "merged"
    for k in (1, 2):
        shard = tmp_path / f"shard{k}"
        extra = ("--layout", "nnunet", "--shard", f"{k}/2", "--out", str(shard))
        assert synthesize(models, *MORPHS, *extra) == 0
        # each shard's dataset.json counts what that shard holds
        info = json.loads((shard / "dataset.json").read_text())
        assert info["numTraining"] == len(list((shard / "labelsTr").iterdir())) == 4 * 2
        shutil.copytree(shard, merged, dirs_exist_ok=True)  # as `cp -r shard*/. merged/`
    capsys.readouterr()
    assert main(["synthesize", "--merge-shards", str(merged)]) == 0
    line = capsys.readouterr().out.strip()
    assert (
        line
        == f"merged 2 shards: 8 cases into manifest.csv, dataset.json numTraining 16 in {merged}"
    )
    assert rows_of(merged / "manifest.csv") == rows_of(whole / "manifest.csv")
    assert (merged / "dataset.json").read_text() == (whole / "dataset.json").read_text()
    assert json.loads((merged / "dataset.json").read_text())["numTraining"] == 8 * 2
    names = data_files(whole)
    assert names == data_files(merged)
    for name in names:
        assert (merged / name).read_bytes() == (whole / name).read_bytes()
    record = json.loads((merged / "provenance.json").read_text())
    assert (record["n_jobs"], record["merged_shards"], record["shard"]) == (8, 2, [1, 1])
    assert not list(merged.glob("*-of-2.*"))  # the shard files are merged away
    # merged once: a second merge says so
    assert main(["synthesize", "--merge-shards", str(merged)]) == 2
    assert "merged already?" in capsys.readouterr().err


def test_sequence_shards_in_one_shared_folder_merge(models, tmp_path):
    whole, shared = tmp_path / "whole", tmp_path / "shared"
    assert synthesize(models, *SEQUENCES, "--out", str(whole)) == 0
    for k in (2, 1):  # any order
        assert synthesize(models, *SEQUENCES, "--shard", f"{k}/2", "--out", str(shared)) == 0
    assert main(["synthesize", "--merge-shards", str(shared)]) == 0
    assert rows_of(shared / "manifest.csv") == rows_of(whole / "manifest.csv")
    assert not (shared / "dataset.json").exists()  # flat: no nnU-Net file


def test_a_missing_shard_or_file_is_one_line_and_nothing_is_merged(models, tmp_path, capsys):
    folder = tmp_path / "data"
    assert synthesize(models, *SEQUENCES, "--shard", "1/2", "--out", str(folder)) == 0
    capsys.readouterr()
    assert main(["synthesize", "--merge-shards", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "shard 2 of 2 is not here (no manifest-2-of-2.csv)" in err[0]
    assert synthesize(models, *SEQUENCES, "--shard", "2/2", "--out", str(folder)) == 0
    victim = folder / rows_of(folder / "manifest-2-of-2.csv")[0]["file_labels"]
    victim.unlink()
    capsys.readouterr()
    assert main(["synthesize", "--merge-shards", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{victim}: named by case" in err[0]
    assert not (folder / "manifest.csv").exists()
    assert (folder / "manifest-1-of-2.csv").is_file()
    assert not list(folder.glob(".manifest*"))  # no temporary left
    assert main(["synthesize", "--merge-shards", str(tmp_path)]) == 2
    assert "not a synthesize dataset" in capsys.readouterr().err
    assert main(["synthesize", "--merge-shards", str(folder), "--out", str(folder)]) == 2
    assert "--merge-shards: merges DIR in place; not with --out" in capsys.readouterr().err


def test_frames_is_refused_for_morphs(models, tmp_path, capsys):
    out = tmp_path / "never"
    assert synthesize(models, "--frames", "ed-es", "--out", str(out)) == 2
    assert "--frames: is for 4D sequences" in capsys.readouterr().err
    assert not out.exists()
