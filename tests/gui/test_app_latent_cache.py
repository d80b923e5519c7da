"""The t-SNE layout is computed once per checkpoint and cohort, in memory and on disk."""

from __future__ import annotations

import numpy as np
import pytest
from app_harness import open_window, settle

from cardio_explorer.app.jobs import latent_cache
from cardio_explorer.app.jobs.latent_cache import TsneLayout, place_out_of_sample

pytestmark = pytest.mark.gui


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    latent_cache.clear_memory()
    yield tmp_path / "cache"
    latent_cache.clear_memory()


def test_a_subject_switch_does_not_run_tsne_again(qtbot, cache_home):
    window = open_window(qtbot, kinds=("label_vae",))
    fits = latent_cache.FIT_COUNT["n"]
    window.state.set("embedding", "tsne")
    settle(qtbot, window)
    assert latent_cache.FIT_COUNT["n"] == fits + 1
    assert window.display.latent.method == "tsne"
    assert window.views.latent.status == ""  # the progress note went when the layout came
    cohort = window.display.latent.points.copy()
    path = window.display.latent.path.copy()
    assert list(cache_home.rglob("*.npz"))  # kept on disk too
    window.state.set("subject_id", "p2")
    settle(qtbot, window)
    assert latent_cache.FIT_COUNT["n"] == fits + 1  # no new layout
    np.testing.assert_array_equal(window.display.latent.points, cohort)
    assert not np.allclose(window.display.latent.path, path)  # the new subject's path
    # a new process (empty memory) reads the layout from disk
    latent_cache.clear_memory()
    window.state.set("subject_id", "p1")
    settle(qtbot, window)
    assert latent_cache.FIT_COUNT["n"] == fits + 1
    np.testing.assert_allclose(window.display.latent.points, cohort)


def test_out_of_sample_points_land_among_their_nearest_codes():
    codes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0]])
    layout = TsneLayout(codes, tuple("abcde"), np.array([[0, 0], [1, 0], [0, 1], [1, 1], [9, 9]]))
    placed = place_out_of_sample(np.array([[10.0, 0.0], [0.2, 0.1]]), layout, neighbours=3)
    np.testing.assert_allclose(placed[0], [1.0, 0.0], atol=1e-6)  # on an existing code
    assert np.linalg.norm(placed[1] - [0.0, 0.0]) < 0.5
