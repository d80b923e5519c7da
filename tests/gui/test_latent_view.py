"""LatentView: cohort by group, path and current point, clicks give subject ids."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.viewer.latent_view import LatentView

pytestmark = pytest.mark.gui


@pytest.fixture
def cohort(rng):
    groups = ["NOR", "DCM", "HCM", "MINF", "ARV"] * 4 + ["OTHER"]
    centres = {g: np.array([i * 6.0, (i % 2) * 6.0]) for i, g in enumerate(dict.fromkeys(groups))}
    points = np.array([centres[g] + rng.normal(0, 0.8, 2) for g in groups])
    ids = [f"patient{i:03d}" for i in range(len(groups))]
    return points, groups, ids


@pytest.fixture
def view(qtbot, cohort) -> LatentView:
    widget = LatentView()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_cohort(*cohort)
    return widget


def test_cohort_is_drawn_by_group_in_the_usual_order(view, cohort):
    points, groups, ids = cohort
    assert view.groups() == ("NOR", "DCM", "HCM", "MINF", "ARV", "OTHER")
    xs, ys = view.group_item("HCM").getData()
    expected = points[[i for i, g in enumerate(groups) if g == "HCM"]]
    np.testing.assert_allclose(np.c_[xs, ys], expected)
    assert view.subject_point(ids[7]) == pytest.approx(tuple(points[7]))


def test_clicking_a_cohort_point_emits_its_subject_id(view, qtbot, cohort):
    points, _, ids = cohort
    target = 2  # an HCM subject
    plot = view._graphics
    scene_pos = view.plot_item.vb.mapViewToScene(QPointF(*points[target]))
    pos = plot.mapFromScene(scene_pos)
    with qtbot.waitSignal(view.subject_clicked, timeout=2000) as blocker:
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [ids[target]]


def test_path_and_current_point(view):
    path = np.array([[0.0, 0.0], [3.0, 1.0], [6.0, 2.0]])
    view.set_path(path)
    xs, ys = view._path.getData()
    np.testing.assert_allclose(np.c_[xs, ys], path)
    view.set_current(path[1])
    assert view.current_point() == (3.0, 1.0)
    view.set_current(None)
    assert view.current_point() is None
    view.set_path(None)
    xs, _ = view._path.getData()
    assert xs is None or len(xs) == 0


def test_bad_shapes_are_refused(view):
    with pytest.raises(CardioInputError, match=r"\(N, 2\)"):
        view.set_cohort(np.zeros((3, 3)), ["NOR"] * 3, ["a", "b", "c"])
    with pytest.raises(CardioInputError, match="differ"):
        view.set_cohort(np.zeros((3, 2)), ["NOR"] * 2, ["a", "b", "c"])
    with pytest.raises(CardioInputError, match=r"\(M, 2\)"):
        view.set_path(np.zeros(4))


def test_the_legend_sits_beside_the_points_not_over_them(view, qtbot, cohort):
    view.resize(700, 400)
    qtbot.wait(10)
    data_area = view.plot_item.getViewBox().sceneBoundingRect()
    assert not data_area.intersects(view.legend.sceneBoundingRect())
    assert [label.text for _, label in view.legend.items] == list(view.groups())
    view.set_title("Latent space")
    view.set_status("computing the t-SNE layout")
    assert view.plot_item.titleLabel.text == "Latent space · computing the t-SNE layout"
    view.set_status("")
    assert view.plot_item.titleLabel.text == "Latent space"
