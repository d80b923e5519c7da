"""Movies of the morph and of the heartbeat, written with imageio and read back."""

from __future__ import annotations

import numpy as np
import pytest
from app_harness import open_window, settle

from cardio_explorer.engine.errors import CardioInputError

pytestmark = pytest.mark.gui
iio = pytest.importorskip("imageio.v3")


@pytest.fixture
def window(qtbot):
    return open_window(qtbot, kinds=("label_vae", "cheart"))


def test_the_morph_movie_has_one_changing_frame_per_alpha(qtbot, window, tmp_path):
    window.movies.export_morph_movie(tmp_path / "morph.gif", n_frames=5)
    settle(qtbot, window)
    assert not window.errors
    frames = iio.imread(tmp_path / "morph.gif", index=None)
    assert frames.shape[0] == 5
    assert window.movies.frames_written == 5
    assert frames.shape[1:3] == window.views.heart.grab_pixels().shape[:2]
    differences = [np.abs(frames[i].astype(int) - frames[0]).mean() for i in range(1, 5)]
    assert max(differences) > 0.5  # the heart changes along the morph
    # the heart on screen afterwards is the shown step again, not the last movie frame
    shown = window.display.current_surfaces()
    assert window.views.heart.actor(2).GetMapper().GetInput() is shown[2]


def test_the_heartbeat_movie_has_every_frame(qtbot, window, tmp_path):
    window.sequences.generate()
    settle(qtbot, window)
    sample = window.display.sample
    written = window.movies.export_heartbeat_movie(tmp_path / "beat.gif")
    frames = iio.imread(written, index=None)
    assert frames.shape[0] == sample.labels.n_frames


def test_a_movie_needs_a_known_format(window, tmp_path):
    with pytest.raises(CardioInputError, match=r"\.gif or \.mp4"):
        window.movies.export_morph_movie(tmp_path / "morph.avi")
