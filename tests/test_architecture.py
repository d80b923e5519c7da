"""Import direction and packaging facts: engine has no Qt/VTK, viewer no torch, app on top."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer folder -> top-level modules it must never import (statically, anywhere in the file)
FORBIDDEN = {
    "engine": {
        "PySide6",
        "vtk",
        "vtkmodules",
        "pyqtgraph",
        "cardio_explorer.app",
        "cardio_explorer.viewer",
    },
    "viewer": {"torch", "cardio_explorer.app"},
}


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer):
    offenders = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in _imported_names(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_engine_loads_no_gui_or_vtk_at_runtime():
    code = (
        "import sys, cardio_explorer.engine\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not set(out.stdout.split()) & {"PySide6", "vtk", "vtkmodules", "pyqtgraph"}


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    for top in ("engine", "viewer", "app"):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            assert "cardio_explorer." + ".".join(parts) in listed, f"{init.parent} not packaged"
