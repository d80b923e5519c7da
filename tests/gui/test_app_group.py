"""The conditions tab's group selector: normal by default, through the job layer into the
request, kept by sessions, and disabled for a CHeart model whose prior has no groups."""

from __future__ import annotations

import numpy as np
import pytest
from app_harness import open_window, settle, tiny_checkpoints

from cardio_explorer.app.gui.controllers.tooltips import GROUP_TIP, NO_GROUPS_TIP
from cardio_explorer.engine.cheart.draws import frame0_latents, prior_draw

pytestmark = pytest.mark.gui


def _open(qtbot, **kw):
    window = open_window(qtbot, **kw)
    window.tabs.setCurrentIndex(1)
    return window


def _generate(qtbot, window):
    window.conditions_panel.generate.click()
    request = window.sequences.last_request
    settle(qtbot, window)
    return request, window.display.sequence


def _choose(window, text):
    combo = window.conditions_panel.group
    combo.setCurrentIndex(combo.findText(text))


def test_the_default_request_asks_for_a_normal_heart(qtbot):
    window = _open(qtbot)
    panel = window.conditions_panel
    assert panel.group.currentText() == "normal (NOR)"
    assert panel.group.isEnabled()
    assert panel.group.toolTip() == GROUP_TIP
    request, output = _generate(qtbot, window)
    assert request.group == "NOR"
    model = window.engines.cheart
    nor = model.prior.groups.index("NOR")
    draw = prior_draw(model, 1, request.seed)
    expected = frame0_latents(model, draw, [request.conditions], np.array([nor]))
    np.testing.assert_allclose(output.samples[0].latents[0], expected[0], atol=1e-4)


def test_choosing_a_group_reaches_the_request_and_the_sweep(qtbot):
    window = _open(qtbot)
    _, normal = _generate(qtbot, window)
    _choose(window, "DCM")
    assert window.state.cheart_group == "DCM"
    request, dcm = _generate(qtbot, window)
    assert request.group == "DCM"
    assert not np.array_equal(dcm.samples[0].labels.data, normal.samples[0].labels.data)
    assert window.sequences.sweep().group == "DCM"
    settle(qtbot, window)
    _choose(window, "any (drawn from the conditions)")
    assert window.state.cheart_group == "any"
    assert _generate(qtbot, window)[0].group is None
    window.state.undo()  # the choice is a control change like the others
    assert window.conditions_panel.group.currentText() == "DCM"


def test_a_session_keeps_the_group(qtbot, tmp_path):
    window = _open(qtbot)
    _choose(window, "HCM")
    path = window.exports.save_session(tmp_path / "s.json")
    _choose(window, "normal (NOR)")
    assert window.exports.open_session(path) is not None
    settle(qtbot, window)
    assert window.state.cheart_group == "HCM"
    assert window.conditions_panel.group.currentText() == "HCM"
    assert _generate(qtbot, window)[0].group == "HCM"


def test_a_model_without_groups_disables_the_selector(qtbot):
    plain = {"cheart": tiny_checkpoints()["cheart_plain"]}
    window = _open(qtbot, paths=plain)
    panel = window.conditions_panel
    assert not panel.group.isEnabled()
    assert panel.group.toolTip() == NO_GROUPS_TIP
    assert panel.group.currentText() == "any (drawn from the conditions)"
    request, output = _generate(qtbot, window)
    assert request.group is None  # the state still says NOR: the model cannot
    assert output.samples[0].labels.n_frames > 1
    window.sequences.set_engines(open_window(qtbot).engines)  # a model with groups again
    assert panel.group.isEnabled()
    assert panel.group.currentText() == "normal (NOR)"
