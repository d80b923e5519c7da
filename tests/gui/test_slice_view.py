"""SliceView and LongAxisView: planes, physical aspect, overlay alpha, linked signals."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import LABEL_TABLE, Label
from cardio_explorer.engine.volume import ImageVolume
from cardio_explorer.viewer.screenshot import qimage_to_pixels
from cardio_explorer.viewer.slice_view import LongAxisView, SliceView, lv_centre_index

pytestmark = pytest.mark.gui


def _shown(widget, qtbot, size=(300, 300)):
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_slice_view_shows_the_chosen_slice_in_mm(qtbot, heart, heart_image):
    view = _shown(SliceView(), qtbot)
    with qtbot.waitSignal(view.slice_changed) as blocker:
        view.set_volumes(heart, heart_image)
    nz, ny, nx = heart.spatial_shape
    assert blocker.args == [nz // 2]
    assert view.n_slices == nz
    np.testing.assert_array_equal(view.displayed_labels(), heart.data[nz // 2])
    np.testing.assert_array_equal(view.displayed_image(), heart_image.data[nz // 2])
    assert view.displayed_rect_mm() == pytest.approx((nx * 1.5, ny * 1.5))
    with qtbot.waitSignal(view.slice_changed) as blocker:
        view.slider.setValue(3)
    assert blocker.args == [3]
    np.testing.assert_array_equal(view.displayed_labels(), heart.data[3])
    with qtbot.assertNotEmitted(view.slice_changed):
        view.set_slice(3)
    view.set_slice(999)
    assert view.slice_index == nz - 1
    assert view.slider.value() == nz - 1


def test_overlay_is_blended_over_an_image_and_opaque_alone(qtbot, heart, heart_image):
    view = _shown(SliceView(overlay_alpha=0.4), qtbot)
    view.set_volumes(heart, heart_image)
    assert view._overlay_item.opacity() == pytest.approx(0.4)
    view.set_overlay_alpha(0.8)
    assert view.overlay_alpha == pytest.approx(0.8)
    assert view._overlay_item.opacity() == pytest.approx(0.8)
    view.set_volumes(heart, None)
    assert view.displayed_image() is None
    assert view._overlay_item.opacity() == 1.0
    # what is on screen: the label colours, opaque
    pixels = qimage_to_pixels(view.grab().toImage())
    for label in (Label.LV, Label.MYO, Label.RV):
        rgb = np.asarray(LABEL_TABLE.entries[label].rgb)
        assert np.count_nonzero(np.all(np.abs(pixels.astype(int) - rgb) <= 2, axis=2)) > 50


def test_image_must_share_the_label_grid(qtbot, heart, heart_image):
    view = SliceView()
    qtbot.addWidget(view)
    other = ImageVolume(heart_image.data, heart_image.affine * np.diag([2, 1, 1, 1]))
    with pytest.raises(CardioInputError, match="grid"):
        view.set_volumes(heart, other)


def test_long_axis_view_cuts_through_the_lv_centre_with_physical_aspect(qtbot, heart):
    view = _shown(LongAxisView(), qtbot)
    view.set_volumes(heart)
    nz, ny, nx = heart.spatial_shape
    _, cy, cx = lv_centre_index(heart)
    assert view.position == cy
    np.testing.assert_array_equal(view.displayed_labels(), heart.data[:, cy, :])
    assert view.displayed_rect_mm() == pytest.approx((nx * 1.5, nz * 5.0))
    view.set_plane("yz")
    np.testing.assert_array_equal(view.displayed_labels(), heart.data[:, :, cx])
    assert view.displayed_rect_mm() == pytest.approx((ny * 1.5, nz * 5.0))
    view.set_position(5)
    np.testing.assert_array_equal(view.displayed_labels(), heart.data[:, :, 5])
    with pytest.raises(CardioInputError, match="plane"):
        view.set_plane("xy")


def test_long_axis_click_picks_the_short_axis_slice(qtbot, heart):
    view = _shown(LongAxisView(), qtbot)
    view.set_volumes(heart)
    view.set_slice_marker(4)
    assert view._marker.isVisible()
    assert view._marker.value() == pytest.approx(4.5 * 5.0)
    assert view.slice_at(6 * 5.0 + 1.0) == 6
    assert view.slice_at(-1.0) is None
    # a real click at the centre of slice 6, mapped from mm to widget pixels
    width, _ = view.displayed_rect_mm()
    scene = view.view_box.mapViewToScene(QPointF(width / 2, 6.5 * 5.0))
    graphics = view._graphics
    pos = graphics.mapFromScene(scene)
    with qtbot.waitSignal(view.slice_clicked) as blocker:
        qtbot.mouseClick(graphics.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [6]


def test_image_alone_is_shown_without_overlay(qtbot, heart_image):
    view = _shown(SliceView(), qtbot)
    view.set_volumes(None, heart_image)
    assert view.displayed_labels() is None
    assert not view._overlay_item.isVisible()
    np.testing.assert_array_equal(view.displayed_image(), heart_image.data[view.slice_index])
