"""The cached morph path: built once in the background, drawn by Play and by scrubbing,
dropped and rebuilt when the morph changes; overtaken decodes are still drawn."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from app_harness import open_window, settle, tiny_checkpoints, wait_for

from cardio_explorer.app.gui.workers import run_request
from cardio_explorer.app.jobs.models import load_engines
from cardio_explorer.app.jobs.morph import MorphRequest
from cardio_explorer.app.jobs.path import coarse_to_fine, path_alphas
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.viewer.surfaces import surfaces_from_meshes

pytestmark = pytest.mark.gui


def _recording(requests: list):
    def runner(request, is_current):
        requests.append(request)
        return run_request(request, is_current)

    return runner


def test_coarse_alphas_come_first():
    order = coarse_to_fine(21)
    assert sorted(order) == list(range(21))
    assert order[:6] == [0, 4, 8, 12, 16, 20]  # the whole sweep, coarsely, after 6 frames
    assert path_alphas()[order[5]] == 1.0


def test_the_cached_path_is_the_engines_morph_with_its_readouts(qtbot):
    window = open_window(qtbot)
    path = window.morph.path
    wait_for(qtbot, lambda: path.complete)
    assert window.path_label.text() == "morph path cached (21)"
    s = window.state
    morph = PathologyMorph.from_checkpoint(tiny_checkpoints()["label_vae"])
    for index in (0, 7, 20):
        frame = path.frames[index]
        args = (s.subject_id, s.target_group)
        ed = morph.morph(*args, "ED", frame.alpha, s.correlated, s.seed).labels
        es = morph.morph(*args, "ES", frame.alpha, s.correlated, s.seed).labels
        np.testing.assert_array_equal(frame.labels.data, ed.data)  # phase ED shown
        assert frame.phenotypes.lvedv_ml == pytest.approx(measure_phenotypes(ed, es).lvedv_ml)
        output = path.output(index)
        assert output is path.output(index)
        surfaces = surfaces_from_meshes(output.meshes)
        assert surfaces[1] is surfaces_from_meshes(path.output(index).meshes)[1]  # VTK built once
        assert surfaces[1].GetNumberOfPoints() == len(frame.meshes[1].points)


def test_scrubbing_draws_from_the_cache_and_release_decodes_the_exact_alpha(qtbot):
    requests: list = []
    window = open_window(qtbot, runner=_recording(requests))
    path = window.morph.path
    wait_for(qtbot, lambda: path.complete)
    slider = window.morph_panel.alpha
    before = len([r for r in requests if isinstance(r, MorphRequest)])
    slider.setSliderDown(True)
    for value in (10, 23, 40, 77, 95):
        slider.setValue(value)
        shown = window.display.morph
        np.testing.assert_array_equal(
            shown.labels.data, path.frames[path.nearest(value / 100)].labels.data
        )
        assert window.views.readouts.values["lvedv_ml"] == pytest.approx(shown.phenotypes.lvedv_ml)
    assert len([r for r in requests if isinstance(r, MorphRequest)]) == before  # no decode
    slider.setSliderDown(False)  # released: the exact alpha (0.95 lies between cached steps)
    settle(qtbot, window)
    assert window.morph.last_result.request.query.alpha == 0.95


def test_a_change_of_seed_target_or_subject_drops_and_rebuilds_the_path(qtbot):
    window = open_window(qtbot)
    path = window.morph.path
    wait_for(qtbot, lambda: path.complete)
    first, old = path.request, path.frames[20].latent_path.copy()
    window.morph_panel.seed.setValue(7)
    assert path.request is not first
    assert not path.complete
    assert len(path.frames) < 21  # dropped at once, not drawn from the old sample
    wait_for(qtbot, lambda: path.complete)
    assert path.request.query.seed == 7
    window.state.set("target_group", "HCM")
    assert path.request.query.target_group == "HCM"
    wait_for(qtbot, lambda: path.complete)
    assert not np.allclose(path.frames[20].latent_path, old)  # the HCM sample
    window.state.set("subject_id", "p2")
    assert path.request.query.subject_id == "p2"
    wait_for(qtbot, lambda: path.complete)
    assert all(f.labels.name.startswith("p2 ") for f in path.frames.values())


def test_an_overtaken_decode_is_still_drawn(qtbot):
    started = threading.Event()
    release = threading.Event()
    release.set()

    def runner(request, is_current):
        job = run_request(request, is_current)
        if not (isinstance(request, MorphRequest) and request.query.alpha == 0.2):
            return job

        def slow():
            started.set()
            release.wait(10)  # the first stage is slow: a newer request arrives meanwhile
            return (yield from job)

        return slow()

    window = open_window(qtbot, runner=runner)
    release.clear()
    window.state.set("alpha", 0.2)
    qtbot.waitUntil(started.is_set, timeout=10_000)
    slow_id = window.worker.latest_id("morph")
    window.state.set("alpha", 0.8)
    release.set()
    settle(qtbot, window)
    assert slow_id in window.display.drawn_ids  # drawn, not dropped
    assert window.display.drawn_ids.index(slow_id) < len(window.display.drawn_ids) - 1
    assert window.morph.last_result.request.query.alpha == 0.8  # the newest wins in the end


def test_another_checkpoint_drops_and_rebuilds_the_path(qtbot):
    window = open_window(qtbot)
    path = window.morph.path
    wait_for(qtbot, lambda: path.complete)
    first = path.request
    engines = load_engines(
        {"label_vae": tiny_checkpoints()["label_vae"]}, torch.device("cpu"), kinds=("label_vae",)
    )
    engines = window.engines.with_slot(engines.slot("label_vae"))
    window.set_engines(engines)
    assert path.request is not first
    assert path.request.engines is engines
    assert len(path.frames) < 21
    assert window.path_label.text().startswith("caching morph path")
    wait_for(qtbot, lambda: path.complete)
    assert window.path_label.text() == "morph path cached (21)"
