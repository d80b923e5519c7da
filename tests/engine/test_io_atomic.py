"""Atomic writes leave either the old file or the complete new one, readable by others."""

from __future__ import annotations

import os

import pytest

from cardio_explorer.engine.io.atomic import atomic_write, atomic_write_text


def test_written_file_follows_umask_not_mkstemp_private_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(umask)
    assert path.read_text() == "hello"
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "old")

    def broken(temp):
        temp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
