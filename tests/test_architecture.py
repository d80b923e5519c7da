"""Layering and packaging: the import-linter contracts hold and catch a violation; engine and
the Qt-free app layers load without Qt or VTK; every subpackage is packaged."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("engine", "app", "viewer", "resources")
LINT_IMPORTS = [sys.executable, "-c", "import importlinter.cli as c; c.lint_imports_command()"]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the tree at root (its pyproject.toml, its cardio_explorer package)."""
    return subprocess.run(
        [*LINT_IMPORTS, "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout
    # grimp saw the layers through the cardio_explorer/ symlinks, not just the package's __init__
    files = int(result.stdout.split("Analyzed ")[1].split(" files")[0])
    assert files >= len(list(ROOT.glob("[aev]*/**/*.py")))


BREAKS = {
    # file to append to, the import, the contract it breaks
    "engine": ("engine/volume.py", "import cardio_explorer.viewer.plots", "engine imports no"),
    "viewer": ("viewer/mesh.py", "import torch", "viewer imports no torch"),
    "jobs": ("app/jobs/state.py", "from PySide6 import QtCore", "app.jobs and app.commands"),
    "commands-indirect": (
        "app/commands/labels.py",
        "import cardio_explorer.viewer.heart_view",  # reaches VTK through viewer
        "app.jobs and app.commands",
    ),
    "methods": (
        "engine/cheart/__init__.py",
        "from cardio_explorer.engine.spade import network",
        "method packages do not import each other",
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_a_deliberately_broken_import_fails_lint_imports(tmp_path, case):
    for layer in LAYERS:
        shutil.copytree(
            ROOT / layer, tmp_path / layer, ignore=shutil.ignore_patterns("*.safetensors", "__py*")
        )
    shutil.copytree(ROOT / "cardio_explorer", tmp_path / "cardio_explorer", symlinks=True)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert _lint_imports(tmp_path).returncode == 0  # the copy is clean

    path, line, contract = BREAKS[case]
    with open(tmp_path / path, "a") as f:
        f.write(f"\n{line}\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts")[1]
    assert contract in broken


BLOCKER = """
import importlib, pkgutil, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"PySide6", "vtk", "vtkmodules", "pyqtgraph"}:
            raise ImportError(f"{name} is blocked")
        return None

sys.meta_path.insert(0, Block())
import cardio_explorer.engine, cardio_explorer.app.commands, cardio_explorer.app.jobs
count = 0
for package in (cardio_explorer.engine, cardio_explorer.app.commands, cardio_explorer.app.jobs):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        count += 1
from cardio_explorer.app.cli import build_parser
build_parser()  # every sub-command registered (their modules imported)
print(count)
"""


def test_engine_jobs_and_commands_import_with_qt_and_vtk_unimportable():
    out = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) > 60  # modules imported, so the blocker was in the way


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    for top in ("engine", "viewer", "app"):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            assert "cardio_explorer." + ".".join(parts) in listed, f"{init.parent} not packaged"


@pytest.mark.slow
def test_the_wheel_holds_every_module_as_a_file(tmp_path):
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in ("engine", "viewer", "app"):
        for module in (ROOT / top).rglob("*.py"):
            assert f"cardio_explorer/{module.relative_to(ROOT).as_posix()}" in names
    assert "cardio_explorer/resources/label_vae.safetensors" in names


@pytest.mark.parametrize("controller", ["export", "movie", "aids"])
def test_these_controllers_reach_the_app_through_its_host_not_the_window(controller):
    import grimp

    graph = grimp.build_graph("cardio_explorer")
    window = "cardio_explorer.app.gui.window"
    module = f"cardio_explorer.app.gui.controllers.{controller}"
    assert graph.find_shortest_chain(importer=window, imported=module) is not None
    assert graph.find_shortest_chain(importer=module, imported=window) is None  # no cycle
