"""Dispatch of the console script: sub-command, help, or the window."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cardio_explorer.app import cli


@pytest.fixture
def window_calls(monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setattr(cli, "_run_gui", lambda parser, rest: calls.append(rest) or 0)
    return calls


def test_a_window_option_whose_value_is_a_command_name_opens_the_window(window_calls):
    # `--screenshot train` is a file called "train", not the train sub-command.
    assert cli.main(["--screenshot", "train", "--session", "cohort"]) == 0
    assert window_calls == [["--screenshot", "train", "--session", "cohort"]]


def test_verbose_before_a_sub_command_still_runs_it(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["-v", "cohort", "--help"])
    assert exit_info.value.code == 0
    assert "--geometry" in capsys.readouterr().out


def test_top_level_help_lists_every_sub_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in cli.COMMAND_MODULES:
        assert name in out
    window_part = out.split("window options (no sub-command):", 1)[1]
    for option in ("--screenshot", "--session", "--cheart", "--spade", "--device"):
        assert option in window_part


def test_a_sub_command_imports_only_its_own_module():
    # A fresh interpreter: this one has imported every command module already.
    code = (
        "import sys; from cardio_explorer.app import cli; "
        "p = cli.build_parser(('cohort',)); "
        "assert p.parse_args(['cohort', '--out', 'x']).command == 'cohort'; "
        "print(sorted(m for m in sys.modules if m.startswith('cardio_explorer.app.commands.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "cardio_explorer.app.commands.cohort" in out.stdout
    assert "cardio_explorer.app.commands.train" not in out.stdout
