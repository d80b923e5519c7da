"""SIGTERM and SIGKILL of ``cohort`` and ``synthesize``: no process left; no staging after a
cohort re-run (SIGTERM cleans up at once; a SIGKILLed run's staging is removed by the next run);
synthesize leaves only whole files and its re-run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_models import tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.engine.io.nifti import read_label_volume

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads process states from /proc"
)
CLI = [sys.executable, "-m", "cardio_explorer.app.cli"]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (dead, not yet reaped by init) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(argv: list[str], folder: Path, min_children: int) -> tuple[subprocess.Popen, list[int]]:
    """Start the command; return once its staging folder exists (and its pool workers)."""
    process = subprocess.Popen(
        [*CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        children = _children(process.pid)
        if any(folder.glob(".out.partial-*")) and len(children) >= min_children:
            time.sleep(0.5)  # let the workers get going
            return process, _children(process.pid)
        time.sleep(0.1)
    process.kill()
    pytest.fail("the command did not start writing within 60 s")


def _stop(process: subprocess.Popen, children: list[int], signum: int) -> str:
    """Send ``signum``; assert the command and all its workers are gone within 5 s."""
    process.send_signal(signum)
    _, err = process.communicate(timeout=5)
    expected = -signum if signum == signal.SIGKILL else 128 + signum  # 143: the CLI's own exit
    assert process.returncode == expected
    deadline = time.monotonic() + 5
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)], "workers outlived their parent"
    return err


def _staging(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".out.*"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cohort = write_tiny_cohort(tmp_path_factory.mktemp("cohort"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return tiny_label_vae_checkpoint(cohort, path, balanced=True)


COHORT = ["cohort", "--n", "400", "--workers", "2", "--quiet"]
SMALL_COHORT = ["cohort", "--n", "1", "--workers", "1", "--quiet", "--no-images"]


def _synthesize(checkpoint: Path, seeds: str) -> list[str]:
    options = ["--device", "cpu", "--no-progress", "--seeds", seeds, "--alphas", "0,1"]
    return ["synthesize", "--checkpoint", str(checkpoint), *options]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_cohort_signal_leaves_no_process_and_rerun_leaves_no_staging(signum, tmp_path):
    out = tmp_path / "out"
    process, children = _start([*COHORT, "--out", str(out)], tmp_path, 2)
    assert len(children) >= 2
    err = _stop(process, children, signum)
    assert not out.exists()
    if signum == signal.SIGTERM:
        assert "terminated (SIGTERM)" in err
        assert "Traceback" not in err
        assert _staging(tmp_path) == []
        return
    left = _staging(tmp_path)
    assert len(left) == 1  # a hard kill cannot clean up; the next run does
    rerun = subprocess.run(
        [*CLI, *SMALL_COHORT, "--out", str(out)], capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"removed {tmp_path / left[0]}, left by an interrupted run" in rerun.stderr
    assert _staging(tmp_path) == []
    assert out.is_dir()


def _logged(logs: Path) -> int:
    """Cases logged as written (rows of the part logs)."""
    return sum(max(0, len(p.read_text().splitlines()) - 1) for p in logs.glob("*.csv"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_synthesize_stopped_leaves_whole_files_and_the_rerun_resumes(signum, checkpoint, tmp_path):
    out = tmp_path / "out"
    argv = [*_synthesize(checkpoint, "0-7"), "--workers", "2", "--out", str(out)]
    process = subprocess.Popen([*CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    logs = out / ".parts"
    while _logged(logs) < 4 or len(_children(process.pid)) < 2:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "synthesize did not start writing within 60 s"
        time.sleep(0.05)
    err = _stop(process, _children(process.pid), signum)
    if signum == signal.SIGTERM:
        assert "terminated (SIGTERM)" in err.decode()
        assert "Traceback" not in err.decode()
        assert not list(out.glob(".*.nii*"))  # no temporary file left
    assert not (out / "manifest.csv").exists()
    for path in out.glob("*.nii.gz"):  # files are renamed into place whole
        if path.name.startswith("."):
            continue  # a write SIGKILL cut short (pathlib's * matches it); the rerun removes it
        read_label_volume(path, acdc_labels=True)
    rerun = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    done = int(rerun.stdout.split(" already there")[0].rsplit(", ", 1)[1])
    assert done >= 4
    assert not list(out.glob(".*.nii*"))
    assert len(list(out.glob("*.nii.gz"))) == 2 * 2 * 8 * 2 * 2  # every case, ED and ES


def test_a_live_runs_staging_is_left_alone(tmp_path):
    from cardio_explorer.engine.io.staging import remove_stale_staging

    out = tmp_path / "out"
    live = tmp_path / f".out.partial-{os.getppid()}-0123abcd"
    dead = tmp_path / ".out.partial-0123abcd"  # the older name, without a pid
    other = tmp_path / ".other.partial-0123abcd"
    for folder in (live, dead, other):
        folder.mkdir()
    assert remove_stale_staging(out) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
