"""Command output under torchrun: rank 0 prints, the other ranks log at debug level."""

from __future__ import annotations

import logging

import pytest

from cardio_explorer.app.cli import build_parser, main
from cardio_explorer.app.commands._ranks import is_rank_zero, launch_rank, log_settings, say


def as_rank(monkeypatch: pytest.MonkeyPatch, rank: str | None, world: str | None) -> None:
    for name, value in (("RANK", rank), ("WORLD_SIZE", world)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("rank", "world", "expected"),
    [
        (None, None, 0),  # no torchrun
        ("1", "2", 1),
        ("0", "2", 0),
        ("3", "1", 0),  # a lone process is rank 0, whatever RANK says
        ("one", "2", 0),  # the engine names a bad RANK before any work
        ("1", "two", 0),
    ],
)
def test_the_rank_comes_from_torchruns_environment(monkeypatch, rank, world, expected):
    as_rank(monkeypatch, rank, world)
    assert launch_rank() == expected
    assert is_rank_zero() == (expected == 0)


def test_rank_zero_prints_and_the_others_log_at_debug(monkeypatch, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    as_rank(monkeypatch, "0", "2")
    say("SPADE (lean): 4 training subjects; CPU")
    assert capsys.readouterr().out == "SPADE (lean): 4 training subjects; CPU\n"
    assert not caplog.records
    as_rank(monkeypatch, "1", "2")
    say("SPADE (lean): 4 training subjects; CPU")
    assert capsys.readouterr().out == ""
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "SPADE (lean): 4 training subjects; CPU")
    ]


def test_other_ranks_keep_warnings_unless_verbose_and_name_themselves(monkeypatch):
    as_rank(monkeypatch, None, None)
    assert log_settings(False) == (logging.INFO, "%(levelname)s %(message)s")
    as_rank(monkeypatch, "1", "2")
    level, layout = log_settings(False)
    assert level == logging.WARNING
    assert layout == "%(levelname)s rank 1: %(message)s"
    assert log_settings(True)[0] == logging.DEBUG


@pytest.mark.parametrize("kind", ["label-vae", "spade", "cheart"])
def test_training_progress_bars_are_rank_zeros(monkeypatch, kind):
    argv = ["train", kind, "--data", "cohort"]
    as_rank(monkeypatch, "0", "2")
    assert build_parser(("train",)).parse_args(argv).no_progress is False
    as_rank(monkeypatch, "1", "2")
    assert build_parser(("train",)).parse_args(argv).no_progress is True


@pytest.mark.parametrize("argv", [["train", "label-vae"], ["train", "cheart"], ["synthesize"]])
def test_help_says_batches_are_per_process(argv, capsys):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    if argv[0] == "train":
        assert "per process: under torchrun each step trains on N processes x this batch" in text
    else:
        assert "batches are per process" in text
