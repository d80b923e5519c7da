"""Clinical conditions (CHeart) and 4D playback in the real window, on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
from app_harness import open_window, settle, wait_for

from cardio_explorer.app.jobs.sequence import SWEEP_STEPS
from cardio_explorer.viewer.surfaces import surfaces_from_meshes

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot):
    window = open_window(qtbot)
    window.tabs.setCurrentIndex(1)
    return window


def _generate(qtbot, window):
    window.conditions_panel.generate.click()
    settle(qtbot, window)
    assert window.display.scene == "sequence"
    return window.display.sequence


def _assert_all_views_on_frame(window, t: int) -> None:
    display, views = window.display, window.views
    sample = display.sample
    for label, poly in surfaces_from_meshes(sample.meshes[t]).items():
        assert views.heart.actor(label).GetMapper().GetInput() is poly
    k = views.slice.slice_index
    np.testing.assert_array_equal(views.slice.displayed_labels(), sample.labels.data[t][k])
    assert views.volume_curve.current_frame() == t
    index = window.state.sample_index
    np.testing.assert_allclose(
        views.latent.current_point(), display.sequence.trajectories[index, t], atol=1e-5
    )
    assert window.playback.slider.value() == t


def test_changing_age_warns_out_of_range_and_generates_for_it(qtbot, window):
    panel = window.conditions_panel
    model = window.engines.cheart
    assert panel.range_labels["age"].text() == (
        f"{model.stats.low['age']:.0f}–{model.stats.high['age']:.0f}"
    )
    panel.spins["age"].setValue(model.stats.high["age"] + 15)
    assert window.state.conditions.age == model.stats.high["age"] + 15
    assert panel.out_of_range() == ["age"]
    assert "age" in panel.warning.text()
    assert panel.spins["age"].styleSheet()
    old = _generate(qtbot, window)
    assert old.conditions.age == model.stats.high["age"] + 15
    assert any("age" in w for w in window.display.sample.warnings)
    panel.spins["age"].setValue(30)
    assert panel.out_of_range() == []
    assert panel.warning.text() == ""
    new = _generate(qtbot, window)
    assert new.conditions.age == 30
    assert not np.array_equal(new.samples[0].labels.data, old.samples[0].labels.data)
    assert window.views.readouts.values["lvedv_ml"] == pytest.approx(
        new.samples[0].phenotypes["lvedv_ml"]
    )


def test_playback_advances_frames_with_every_view_on_the_same_frame(qtbot, window):
    sequence = _generate(qtbot, window)
    n_frames = sequence.samples[0].labels.n_frames
    _assert_all_views_on_frame(window, 0)
    window.playback.set_playing(True)
    shown = window.display.frames_shown
    wait_for(qtbot, lambda: window.display.frames_shown >= shown + 2 * n_frames, 10_000)
    window.playback.set_playing(False)
    t = window.state.frame
    _assert_all_views_on_frame(window, t)
    fps = window.playback.measured_fps()
    # the timer runs at the sequence's own frame rate (50 ms frames here: 20 fps)
    assert window.playback.frame_ms == sequence.frame_duration_ms
    assert fps is not None
    assert fps > 8
    # without loop, playback stops at the last frame
    window.playback.loop.setChecked(False)
    window.playback.set_playing(True)
    wait_for(qtbot, lambda: not window.playback.playing, 10_000)
    _assert_all_views_on_frame(window, n_frames - 1)
    window.playback.es_button.click()
    _assert_all_views_on_frame(window, window.display.sample.es_frame)


def test_complete_uses_the_ed_frame_of_the_shown_morph(qtbot, window):
    morph_ed = window.display.morph.ed
    window.conditions_panel.complete.click()
    request = window.sequences.last_request
    assert request.mode == "complete"
    assert request.ed is morph_ed
    settle(qtbot, window)
    assert window.display.sequence.mode == "complete"
    assert window.display.sequence.samples[0].labels.n_frames > 1


def test_several_samples_and_switching_between_them(qtbot, window):
    window.conditions_panel.n_samples.setValue(3)
    sequence = _generate(qtbot, window)
    assert len(sequence.samples) == 3
    window.conditions_panel.sample_index.setValue(2)
    assert window.state.sample_index == 1
    _assert_all_views_on_frame(window, window.state.frame)
    assert window.display.sample is sequence.samples[1]
    window.views.latent.subject_clicked.emit("sample 3 frame 4")
    assert window.state.sample_index == 2
    _assert_all_views_on_frame(window, 3)


def test_condition_sweep_draws_bands_per_sex(qtbot, window):
    panel = window.conditions_panel
    panel.sweep_n.setValue(2)
    panel.sweep_condition.setCurrentText("weight")
    panel.sweep.click()
    settle(qtbot, window)
    output = window.sequences.sweep_output
    assert output.condition == "weight"
    assert len(output.values) == SWEEP_STEPS
    assert window.views.sweep.band_names() == ("F", "M")
    assert len(output.curves["F"]["lvedv_ml"]["mean"]) == SWEEP_STEPS
    panel.sweep_phenotype.setCurrentText("LVEF (%)")
    assert window.views.sweep.plot_item.getAxis("left").labelText == "LVEF (%)"


def test_switching_tabs_shows_the_last_result_of_each_scene(qtbot, window):
    _generate(qtbot, window)
    window.tabs.setCurrentIndex(0)
    assert window.display.scene == "morph"
    surfaces = surfaces_from_meshes(window.display.morph.meshes)
    assert window.views.heart.actor(1).GetMapper().GetInput() is surfaces[1]
    window.tabs.setCurrentIndex(1)
    assert window.display.scene == "sequence"
    _assert_all_views_on_frame(window, window.state.frame)
