"""Anatomical aids: patient letters and mm on the 2D views, orientation marker and legend in 3D."""

from __future__ import annotations

import numpy as np
import pytest
from app_harness import open_window

from cardio_explorer.engine.labels import LABEL_TABLE
from cardio_explorer.engine.volume import LabelVolume
from cardio_explorer.viewer.anatomy import direction_letter, scale_length_mm
from cardio_explorer.viewer.slice_view import LongAxisView, SliceView

pytestmark = pytest.mark.gui


def test_direction_letters_follow_ras():
    assert direction_letter([1, 0.2, 0]) == "R"
    assert direction_letter([-1, 0.2, 0]) == "L"
    assert direction_letter([0.1, 0.9, -0.3]) == "A"
    assert direction_letter([0, -1, 0]) == "P"
    assert direction_letter([0.3, 0.2, 0.8]) == "S"
    assert direction_letter([0, 0, -2]) == "I"
    assert direction_letter([0.0, -0.7, 0.6]) == "PS"  # oblique: two letters
    assert scale_length_mm(160.0) == 20.0
    assert scale_length_mm(30.0) == 5.0


def _volume():
    # columns run towards the patient's left, rows towards posterior, slices downwards (inferior)
    affine = np.array(
        [[-1.5, 0.0, 0.0, 10.0], [0.0, -1.5, 0.0, 5.0], [0.0, 0.0, -8.0, 60.0], [0, 0, 0, 1.0]]
    )
    data = np.zeros((6, 40, 50), dtype=np.uint8)
    data[:, 10:30, 10:30] = 1
    return LabelVolume(data, affine)


def test_the_short_axis_view_names_its_edges_and_shows_mm(qtbot):
    view = SliceView()
    qtbot.addWidget(view)
    view.set_volumes(_volume())
    assert view.aids.letters() == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert view.aids.scale_mm == 10.0  # 75 mm wide: a 10 mm bar
    view.set_slice(4)
    assert view._caption.text() == "base +32.0 mm"
    assert "slice 5 of 6" in view._caption.toolTip()


def test_the_long_axis_view_names_its_edges(qtbot):
    view = LongAxisView(plane="xz")
    qtbot.addWidget(view)
    view.set_volumes(_volume())
    assert view.aids.letters() == {"left": "R", "right": "L", "top": "S", "bottom": "I"}


def test_the_window_has_pane_titles_a_marker_and_one_legend(qtbot):
    window = open_window(qtbot, kinds=("label_vae",))
    window.views.heart.render()
    aids = window.aids
    assert aids.marker_enabled
    axes = aids.axes
    labels = (axes.GetXAxisLabelText(), axes.GetYAxisLabelText(), axes.GetZAxisLabelText())
    assert labels == ("R", "A", "S")
    entries = [e for e in LABEL_TABLE.entries if e.value]
    assert aids.legend_texts() == [f"■ {e.description}" for e in entries]
    for actor, entry in zip(aids.legend, entries, strict=True):
        rgb = tuple(round(255 * c) for c in actor.GetTextProperty().GetColor())
        assert rgb == entry.rgb  # the colours of the surfaces and the slice overlays
        assert window.views.heart.color(entry.value) == entry.rgb
    assert window.views.slice.aids.title.text().startswith("Short axis")
    assert window.views.long_axis.aids.title.text().startswith("Long axis")
    assert set(window.views.slice.aids.letters().values()) <= set("RLAPSI")
