"""``cardio-explorer labels``: the label table for ITK-SNAP (.txt) or 3D Slicer (.ctbl)."""

from __future__ import annotations

import pytest

from cardio_explorer.app.cli import main
from cardio_explorer.engine.labels import INTERNAL_TO_ACDC, LABEL_TABLE


def _rows(path, slicer: bool) -> dict[int, tuple[str, tuple[int, int, int]]]:
    rows = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if slicer:  # value name r g b a
            value, name, r, g, b, _ = line.split()
        else:  # IDX R G B A VIS MSH "description"
            fields, name = line.split('"')[0].split(), line.split('"')[1]
            value, r, g, b = fields[:4]
        rows[int(value)] = (name.replace("_", " "), (int(r), int(g), int(b)))
    return rows


@pytest.mark.parametrize(("name", "slicer"), [("t.ctbl", True), ("t.txt", False)])
def test_writes_every_label_with_its_colour(tmp_path, capsys, name, slicer):
    out = tmp_path / name
    assert main(["labels", "--out", str(out)]) == 0
    assert ("3D Slicer" if slicer else "ITK-SNAP") in capsys.readouterr().out
    # ACDC values by default, as every label file the project writes
    expected = {INTERNAL_TO_ACDC[e.value]: (e.description, e.rgb) for e in LABEL_TABLE.entries}
    assert _rows(out, slicer) == expected


def test_app_values_swap_lv_and_rv(tmp_path):
    out = tmp_path / "app.ctbl"
    assert main(["labels", "--format", "slicer", "--app-labels", "--out", str(out)]) == 0
    rows = _rows(out, slicer=True)
    assert rows[1][0] == "LV blood pool"
    assert rows[3][0] == "RV blood pool"
    assert main(["labels", "--out", str(out), "--acdc-labels", "--overwrite"]) == 0
    assert _rows(out, slicer=True)[1][0] == "RV blood pool"


def test_refusals_are_one_line(tmp_path, capsys):
    out = tmp_path / "t.txt"
    assert main(["labels", "--format", "slicer", "--out", str(out)]) == 2
    assert "use a .ctbl file name" in capsys.readouterr().err
    assert not out.exists()
    assert main(["labels", "--out", str(out)]) == 0
    before = out.read_text()
    assert main(["labels", "--out", str(out), "--app-labels"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_text() == before
    assert main(["labels", "--out", str(out), "--app-labels", "--overwrite"]) == 0
    assert out.read_text() != before
