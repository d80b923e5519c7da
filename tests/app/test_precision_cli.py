"""``--precision`` on the commands and ``bench`` with fp32 and bf16 side by side."""

from __future__ import annotations

import argparse
import json

import pytest

from cardio_explorer.app.cli import build_parser, main
from cardio_explorer.app.commands._precision import precision_from_args
from cardio_explorer.engine import device as precision


@pytest.mark.parametrize(
    "command",
    [
        ["train", "label-vae", "--data", "d"],
        ["train", "spade", "--data", "d"],
        ["train", "cheart", "--data", "d"],
        ["evaluate", "label-vae", "--data", "d", "--out", "r.json"],
        ["evaluate", "spade", "--data", "d", "--out", "r.json"],
        ["synthesize", "--out", "o"],
    ],
)
def test_train_evaluate_synthesize_take_precision(command):
    parser = build_parser()
    assert parser.parse_args(command).precision == "auto"
    assert parser.parse_args([*command, "--precision", "fp32"]).precision == "fp32"
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--precision", "fp16"])


def test_no_amp_is_kept_as_fp32():
    args = build_parser().parse_args(["train", "spade", "--data", "d", "--no-amp"])
    assert args.precision == "fp32"


def test_the_policy_is_the_commands_only_for_its_run():
    before = precision.precision_policy()
    with precision_from_args(argparse.Namespace(precision="fp32")):
        assert precision.precision_policy() == "fp32"
    assert precision.precision_policy() == before
    with precision_from_args(argparse.Namespace(precision="both")):  # bench: its own loop
        assert precision.precision_policy() == before


@pytest.mark.slow
def test_bench_json_puts_both_precisions_of_each_path_side_by_side(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--only", "gui_path", "--repeats", "2", "--device", "cpu", "--json", str(out)]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "fp32 ms" in table
    assert "bf16 ms" in table
    doc = json.loads(out.read_text())
    assert {"device", "cpu_flags", "torch", "threads", "results"} <= set(doc)
    paths = {}
    for r in doc["results"]:
        assert r["median_ms"] > 0
        assert r["p10_ms"] <= r["p90_ms"]
        paths.setdefault(r["path"], set()).add(r["precision"])
    assert paths
    assert all(p == {"fp32", "bf16"} for p in paths.values())


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--repeats", "0"], "--repeats"),
        (["--only", "nothing"], "--only"),
    ],
)
def test_bench_refuses_bad_options_in_one_line(args, named, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert named in err[0]
