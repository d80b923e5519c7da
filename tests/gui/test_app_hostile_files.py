"""The app refuses hostile checkpoints with a dialog and never writes outside a chosen folder."""

from __future__ import annotations

import pytest
from app_harness import open_window, settle, tiny_checkpoints
from hostile import rewrite_checkpoint, with_reference_id

from cardio_explorer.app.jobs.morph import SeriesRequest, run_series
from cardio_explorer.app.jobs.query import MorphQuery
from cardio_explorer.engine.errors import CardioInputError

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot):
    return open_window(qtbot, kinds=("label_vae",))


def _poison(tensors):
    name = next(k for k in tensors if k.endswith("weight"))
    tensors[name].view(-1)[0] = float("nan")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ({"header": with_reference_id("../../ESCAPED_patient011")}, "cannot name a file"),
        ({"weights": _poison}, "NaN or infinite"),
    ],
)
def test_open_checkpoint_refuses_a_hostile_file_with_a_dialog(
    qtbot, window, tmp_path, edit, problem
):
    hostile = rewrite_checkpoint(
        tiny_checkpoints()["label_vae"], tmp_path / "h.safetensors", **edit
    )
    before = window.engines
    assert window.exports.open_checkpoint(hostile) is not None
    settle(qtbot, window)
    assert window.engines is before
    text = window.error_boxes[-1].text()
    assert "h.safetensors" in text
    assert problem in text


@pytest.mark.parametrize("bad_id", ["../../ESCAPED_patient011", "/tmp/cardio_ESCAPED", "a/b"])
def test_the_morph_path_export_writes_nothing_outside_its_folder(window, tmp_path, bad_id):
    folder = tmp_path / "one" / "two"
    request = SeriesRequest(1, window.engines, MorphQuery(bad_id, "DCM", "ED"), 2, folder)
    with pytest.raises(CardioInputError, match="cannot name a file"):
        list(run_series(request, lambda: True))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
