"""Bad input on the command line: exit 2 and one line naming the option or file, before any
heavy work; and no file written outside --out whatever ids a checkpoint holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hostile import rewrite_checkpoint, with_reference_id
from tiny_models import tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.app.cli import main
from cardio_explorer.engine.limits import available_cpus


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cohort = write_tiny_cohort(tmp_path_factory.mktemp("cohort"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return tiny_label_vae_checkpoint(cohort, path, balanced=True)


def _refused(capsys, argv: list[str], *expected: str) -> str:
    """Run the command: exit 2, one line on stderr holding every expected text."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for text in expected:
        assert text in err
    return err


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--seeds", "0-1000000000"], "--seeds"),
        (["--seeds", "0-99999999999999999999"], "--seeds"),
        (["--steps", "1000000000"], "--steps"),
    ],
)
def test_synthesize_plans_are_counted_not_built(checkpoint, tmp_path, capsys, args, flag):
    out = tmp_path / "syn"
    _refused(
        capsys, ["synthesize", "--checkpoint", str(checkpoint), "--out", str(out), *args], flag
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--geometry", "dense", "--grid", "10000,10000,10000"], "--grid"),
        (["--geometry", "dense", "--grid", "600,600,600"], "--grid"),
        (["--n", "1000000000"], "--n"),
        (["--seed", "-1"], "--seed"),
        (["--geometry", "dense", "--spacing", "nan,2,2"], "--spacing"),
        (["--misalignment", "inf"], "--misalignment"),
        (["--misalignment", "nan"], "--misalignment"),
        (["--frames", "100000"], "--frames"),
        (["--workers", "100000"], "--workers"),
    ],
)
def test_cohort_sizes_and_numbers_are_bounded(tmp_path, capsys, args, flag):
    out = tmp_path / "c"
    _refused(capsys, ["cohort", "--out", str(out), "--quiet", *args], flag)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--threads", str(available_cpus() + 1)], "--threads"),
        (["--threads", "10000"], "--threads"),
        (["--limit", "-1"], "--limit"),
        (["--alpha-steps", "1000000000"], "--alpha-steps"),
    ],
)
def test_evaluate_options_are_bounded(tmp_path, capsys, args, flag):
    argv = ["evaluate", "label-vae", "--data", str(tmp_path), "--out", str(tmp_path / "r.json")]
    _refused(capsys, [*argv, *args], flag)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--repeats", "0"], "--repeats"), (["--only", "nothing"], "--only")],
)
def test_bench_options_are_checked(capsys, args, flag):
    _refused(capsys, ["bench", *args], flag)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_bench_on_cuda_without_a_gpu_is_one_line(capsys):
    _refused(capsys, ["bench", "--device", "cuda"], "--device", "no CUDA GPU")


@pytest.mark.parametrize(
    "bad_id",
    ["../../ESCAPED_patient011", "../ESCAPED", "/tmp/cardio_ESCAPED_abs", "sub/dir", "..", ".x"],
)
def test_no_file_lands_outside_out_whatever_the_ids(checkpoint, tmp_path, capsys, bad_id):
    work = tmp_path / "work"
    work.mkdir()
    hostile = rewrite_checkpoint(checkpoint, work / "h.safetensors", with_reference_id(bad_id))
    before = _files(tmp_path)
    out = work / "syn" / "trav"
    argv = ["synthesize", "--checkpoint", str(hostile), "--out", str(out), "--device", "cpu"]
    argv += ["--no-progress", "--seeds", "0", "--alphas", "0,1", "--groups", "DCM"]
    _refused(capsys, argv, "h.safetensors", "cannot name a file")
    assert _files(tmp_path) == before
    assert not Path("/tmp/cardio_ESCAPED_abs_DCM_s0_a000_ED_gt.nii.gz").exists()


def test_synthesize_refuses_nan_weights(checkpoint, tmp_path, capsys):
    def poison(tensors):
        name = next(k for k in tensors if k.endswith("weight"))
        tensors[name].view(-1)[0] = float("inf")

    hostile = rewrite_checkpoint(checkpoint, tmp_path / "nan.safetensors", weights=poison)
    out = tmp_path / "syn"
    argv = ["synthesize", "--checkpoint", str(hostile), "--out", str(out), "--device", "cpu"]
    _refused(capsys, argv, "nan.safetensors", "NaN or infinite")
    assert not out.exists()


def test_a_safe_id_checkpoint_still_synthesizes(checkpoint, tmp_path, capsys):
    hostile = rewrite_checkpoint(checkpoint, tmp_path / "ok.safetensors", with_reference_id("q9"))
    out = tmp_path / "syn"
    argv = ["synthesize", "--checkpoint", str(hostile), "--out", str(out), "--device", "cpu"]
    argv += ["--no-progress", "--seeds", "0", "--alphas", "1", "--groups", "DCM", "--subjects"]
    assert main([*argv, "q9", "--phases", "ED"]) == 0
    assert (out / "q9_DCM_s0_a100_ED_gt.nii.gz").is_file()
    assert {p.parent for p in out.rglob("*.nii.gz")} == {out}
