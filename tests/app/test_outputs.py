"""Outputs: refused when they exist (before any work), atomic, one line on a full or read-only disk.

Read-only and full disks are real folders: a chmod 555 folder for a normal user; as root (which
ignores permission bits) a read-only / tiny tmpfs mounted over the folder, skipped if mounting
is not allowed.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from cardio_explorer.app.cli import main
from cardio_explorer.app.commands._reports import write_report
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write_text


def _mount_tmpfs(folder: Path, options: str) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def readonly_dir(tmp_path):
    """A real folder nothing can be written into."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not _mount_tmpfs(folder, "ro,size=1m"):
        pytest.skip("running as root and cannot mount a read-only tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def full_dir(tmp_path):
    """A real folder on a 64 KiB tmpfs (root only)."""
    folder = tmp_path / "full"
    folder.mkdir()
    if os.geteuid() != 0 or not _mount_tmpfs(folder, "size=64k"):
        pytest.skip("needs root to mount a tiny tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _render(report: dict) -> str:
    return "# report\n" + "x" * len(json.dumps(report)) + "\n"


def test_report_on_a_full_disk_leaves_nothing(full_dir):
    out = full_dir / "r.json"
    with pytest.raises(CardioInputError, match="No space left on device") as caught:
        write_report(out, {"values": "v" * 40_000}, _render)
    assert str(out) in str(caught.value) or str(out.with_suffix(".md")) in str(caught.value)
    assert list(full_dir.iterdir()) == []


def test_report_write_failing_midway_leaves_old_files(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    write_report(out, {"a": 1}, _render)
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    real_write_text = Path.write_text

    def enospc_on_markdown(self, text, *args, **kwargs):
        if ".r.md." in self.name:  # the markdown temporary: half-written, then the disk is full
            real_write_text(self, text[: len(text) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", enospc_on_markdown)
    with pytest.raises(CardioInputError, match=r"r\.md: cannot write \(No space left"):
        write_report(out, {"a": 2, "b": "x" * 1000}, _render)
    monkeypatch.undo()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def test_atomic_write_into_a_readonly_folder_is_one_error(readonly_dir):
    with pytest.raises(CardioInputError, match="cannot write"):
        atomic_write_text(readonly_dir / "a.txt", "hello")
    assert list(readonly_dir.iterdir()) == []


def _evaluate(out: Path, *options: str) -> int:
    # --data does not exist: an error about --out proves --out is checked before anything else.
    data = out.parent / "no-such-cohort"
    return main(["evaluate", "label-vae", "--data", str(data), "--out", str(out), *options])


def test_evaluate_refuses_an_existing_report_before_any_work(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("{}")
    assert _evaluate(out) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--out" in line
    assert str(out) in line
    assert "--overwrite" in line
    assert out.read_text() == "{}"
    # the markdown half of the report counts too
    out.unlink()
    out.with_suffix(".md").write_text("# old")
    assert _evaluate(out) == 2
    assert "r.md exists" in _one_line(capsys.readouterr().err)
    # with --overwrite the check passes and the run goes on to the (missing) data
    assert _evaluate(out, "--overwrite") == 2
    assert "no-such-cohort" in _one_line(capsys.readouterr().err)


def test_evaluate_into_a_readonly_folder_is_refused_before_work(readonly_dir, capsys):
    assert _evaluate(readonly_dir / "r.json") == 2
    line = _one_line(capsys.readouterr().err)
    assert str(readonly_dir) in line
    assert "cannot write" in line
    assert list(readonly_dir.iterdir()) == []


def _train(kind: str, out: Path, *options: str) -> int:
    data = out.parent / "no-such-cohort"
    return main(["train", kind, "--data", str(data), "--out", str(out), "--no-progress", *options])


@pytest.mark.parametrize("kind", ["label-vae", "cheart", "spade"])
def test_train_refuses_existing_checkpoint_folder_and_readonly_before_work(
    kind, tmp_path, readonly_dir, capsys
):
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"old")
    assert _train(kind, out) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line
    assert "--overwrite" in line
    assert out.read_bytes() == b"old"

    out.unlink()
    state = tmp_path / "m.state.safetensors"
    state.write_bytes(b"old state")
    assert _train(kind, out) == 2
    assert "m.state.safetensors exists" in _one_line(capsys.readouterr().err)
    state.unlink()

    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert _train(kind, folder) == 2
    assert "is a folder" in _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "ro"]
    assert list(folder.iterdir()) == []

    assert _train(kind, readonly_dir / "m.safetensors") == 2
    assert "cannot write into" in _one_line(capsys.readouterr().err)


def test_resuming_the_same_run_may_replace_its_own_files(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"old")
    state = tmp_path / "m.state.safetensors"
    state.write_bytes(b"old state")
    assert _train("label-vae", out, "--resume", str(state)) == 2
    # past the output check: the error is about the cohort, not about --out
    assert "no-such-cohort" in _one_line(capsys.readouterr().err)


def test_input_errors_cross_process_boundaries():
    error = pickle.loads(pickle.dumps(CardioInputError("a.nii.gz", "cannot write")))
    assert (error.thing, error.problem) == ("a.nii.gz", "cannot write")


def test_cohort_on_a_full_disk_is_one_line_and_leaves_nothing(full_dir, capsys):
    out = full_dir / "c"
    argv = ["cohort", "--n", "4", "--workers", "2", "--quiet", "--out", str(out)]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "No space left on device" in line
    assert line.startswith(f"cardio-explorer cohort: error: {out}/")  # not the staging name
    assert list(full_dir.iterdir()) == []
