"""File > Export label table writes the ITK-SNAP or 3D Slicer table."""

from __future__ import annotations

import pytest
from app_harness import open_window

pytestmark = pytest.mark.gui


def test_file_menu_exports_the_label_table_for_itksnap_and_slicer(qtbot, tmp_path):
    window = open_window(qtbot, kinds=("label_vae",))
    actions = [a.text() for m in window.menuBar().actions() for a in m.menu().actions()]
    assert "Export label table (ITK-SNAP / 3D Slicer)…" in actions
    slicer = window.exports.export_label_table(tmp_path / "labels.ctbl")
    assert slicer.read_text().startswith("# Color table file")
    assert "3 LV_blood_pool 220 60 60 255" in slicer.read_text()
    itksnap = window.exports.export_label_table(tmp_path / "labels.txt")
    assert "ITK-SnAP Label Description File" in itksnap.read_text()
    assert '"LV blood pool"' in itksnap.read_text()
    assert "labels.txt" in window.statusBar().currentMessage()
