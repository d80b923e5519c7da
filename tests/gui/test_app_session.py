"""An invalid session is one dialog (or one line and exit 2 with --screenshot); nothing changes."""

from __future__ import annotations

import json
import logging

import pytest
from app_harness import open_window, settle, tiny_checkpoints

from cardio_explorer.app.gui import main as gui
from cardio_explorer.app.jobs.session import SESSION_FORMAT

pytestmark = pytest.mark.gui


def _write(path, controls, checkpoints=None):
    data = {
        "format": SESSION_FORMAT,
        "version": 1,
        "checkpoints": checkpoints or {},
        "controls": controls,
    }
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({"alpha": 0.9, "subject_id": "nobody"}, "unknown subject 'nobody'"),
        ({"alpha": 0.9, "frame": 99}, "controls.frame: 99 is past the last frame"),
        ({"alpha": 0.9, "show_image": "no"}, "controls.show_image: must be true or false"),
        ({"alpha": 0.9, "seed": 1e30}, "controls.seed: must be a whole number"),
    ],
)
def test_an_invalid_session_is_one_dialog_and_changes_nothing(qtbot, tmp_path, controls, message):
    window = open_window(qtbot, kinds=("label_vae", "cheart"))
    settle(qtbot, window)
    before = window.state.snapshot()
    engines = window.engines
    boxes = len(window.error_boxes)
    # the session would also load SPADE: that must not happen either
    spade = {"spade": {"path": str(tiny_checkpoints()["spade"]), "sha256": ""}}
    path = _write(tmp_path / "bad.json", controls, spade)
    assert window.exports.open_session(path) is None
    assert len(window.error_boxes) == boxes + 1
    assert message in window.error_boxes[-1].text()
    assert str(path) in window.error_boxes[-1].text()
    settle(qtbot, window)
    assert window.state.snapshot() == before
    assert window.engines is engines
    assert not window.engines.slot("spade").ready
    assert not window.state.can_undo


def test_a_valid_session_still_applies(qtbot, tmp_path):
    window = open_window(qtbot)
    subject = window.engines.morph.atlas.reference_ids[-1]
    path = _write(tmp_path / "ok.json", {"alpha": 0.9, "subject_id": subject, "frame": 2})
    assert window.exports.open_session(path) == []
    settle(qtbot, window)
    assert window.state.alpha == 0.9
    assert window.state.subject_id == subject


def test_screenshot_with_an_invalid_session_is_one_line_and_exit_2(tmp_path, caplog):
    paths = tiny_checkpoints()
    session = _write(tmp_path / "nan.json", {"alpha": 0.5})
    session.write_text(session.read_text().replace("0.5", "NaN"))
    shot = tmp_path / "app.png"
    argv = ["--screenshot", str(shot), "--device", "cpu", "--session", str(session)]
    argv += ["--label-vae", str(paths["label_vae"]), "--cheart", str(paths["cheart"])]
    with caplog.at_level(logging.ERROR):
        assert gui.run(argv) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "nan.json: not valid JSON (NaN is not a JSON number)" in errors[0]
    assert not shot.exists()
