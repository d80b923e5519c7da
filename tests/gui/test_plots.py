"""Read-out plots: volume-time curve, phenotype vs alpha, condition sweep bands."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.viewer.plots import (
    PhenotypeAlphaView,
    SweepBand,
    SweepView,
    VolumeCurveView,
)

pytestmark = pytest.mark.gui


def _add(qtbot, widget):
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_volume_curve_marks_ed_es_and_follows_the_frame(qtbot):
    view = _add(qtbot, VolumeCurveView())
    t = np.arange(20)
    lv = 120 - 60 * np.sin(np.pi * t / 19) ** 2
    view.set_curves(lv, lv * 1.1, ed_frame=0, es_frame=9, frame_duration_ms=40.0)
    names = [item.name() for item in view._items]
    assert names == ["LV", "RV"]
    xs, ys = view._items[0].getData()
    np.testing.assert_allclose(xs, t * 40.0)
    np.testing.assert_allclose(ys, lv)
    assert [m.value() for m in view._markers] == [0.0, 360.0]
    with qtbot.assertNotEmitted(view.frame_selected):
        view.set_frame(5)
    assert view.current_frame() == 5
    # a drag that ends between frames snaps to the nearest and tells the app
    view._frame.setValue(7.4 * 40.0)
    with qtbot.waitSignal(view.frame_selected) as blocker:
        view._frame.sigPositionChangeFinished.emit(view._frame)
    assert blocker.args == [7]
    assert view._frame.value() == pytest.approx(280.0)
    with pytest.raises(CardioInputError, match="RV volumes"):
        view.set_curves(lv, lv[:5])


def test_phenotype_alpha_view(qtbot):
    view = _add(qtbot, PhenotypeAlphaView())
    alphas = np.linspace(0, 1, 11)
    view.set_curves(alphas, {"LVEF (%)": 60 - 30 * alphas, "LVEDV (mL)": 140 + 80 * alphas})
    assert view.curve_names() == ("LVEF (%)", "LVEDV (mL)")
    np.testing.assert_allclose(view._items[0].getData()[0], 100 * alphas)
    # mL and % on one axis would hide one of them: each curve is a percentage of its start,
    # and its legend entry carries the unit and both end values
    np.testing.assert_allclose(view._items[0].getData()[1], 100 * (60 - 30 * alphas) / 60)
    np.testing.assert_allclose(view._items[1].getData()[1][-1], 100 * 220 / 140)
    assert view.legend_texts() == ("LVEF (%): 60 → 30", "LVEDV (mL): 140 → 220")
    assert view.plot_item.getAxis("left").labelText == "% of the value at alpha 0"
    view.resize(600, 300)
    qtbot.wait(10)
    data_area = view.plot_item.getViewBox().sceneBoundingRect()
    assert not data_area.intersects(view.legend.sceneBoundingRect())  # the legend is off the data
    view.set_alpha(0.35)
    assert view._alpha.value() == pytest.approx(35.0)
    view.set_curves(alphas, {"LVM (g)": alphas})
    assert view.curve_names() == ("LVM (g)",)


def test_sweep_band_from_samples_and_view(qtbot, rng):
    samples = rng.normal(100.0, 5.0, size=(400, 6)) + np.arange(6) * 10
    band = SweepBand.from_samples(samples)
    np.testing.assert_allclose(band.mean, 100 + np.arange(6) * 10, atol=1.0)
    assert np.all(band.low < band.mean)
    assert np.all(band.high > band.mean)
    np.testing.assert_allclose(band.high - band.low, 2 * 1.96 * 5.0, rtol=0.15)
    view = _add(qtbot, SweepView())
    view.set_sweep(np.arange(30, 90, 10), {"F": band, "M": band}, "age (years)", "LVEDV (mL)")
    assert view.band_names() == ("F", "M")
    assert view.plot_item.getAxis("bottom").labelText == "age (years)"
    with pytest.raises(CardioInputError, match="sweep samples"):
        SweepBand.from_samples(np.zeros(5))
