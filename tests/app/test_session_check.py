"""Session files are checked in full before anything is applied; the undo stack is bounded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardio_explorer.app.jobs.session import SESSION_FORMAT, Session, read_session, write_session
from cardio_explorer.app.jobs.session_check import CONTROLS
from cardio_explorer.app.jobs.state import MAX_UNDO, AppState
from cardio_explorer.engine.errors import CardioInputError

VALID_CONTROLS = {
    "subject_id": "patient061",
    "target_group": "HCM",
    "phase": "ES",
    "alpha": 0.25,
    "correlated": False,
    "seed": 12,
    "show_image": True,
    "smoothing": 5,
    "embedding": "tsne",
    "conditions": {"age": 40.0, "sex": "M", "height": 180.0, "weight": 80.0, "sbp": 130.0},
    "n_samples": 3,
    "sample_index": 2,
    "frame": 7,
    "sweep_condition": "sbp",
    "cheart_group": "MINF",
}
CAMERA = {"position": [0, 0, 300], "focal_point": [0, 0, 0], "view_up": [0, 1, 0]}


def _session_text(**changes) -> str:
    data = {
        "format": SESSION_FORMAT,
        "version": 1,
        "checkpoints": {},
        "controls": dict(VALID_CONTROLS),
        "camera": CAMERA,
        "scene": "morph",
        "cohort": None,
        "extra": {},
    }
    for key, value in changes.items():
        if key in CONTROLS:
            data["controls"][key] = value
        else:
            data[key] = value
    return json.dumps(data)


def test_a_full_valid_session_round_trips(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(_session_text())
    session = read_session(path)
    assert session.controls == VALID_CONTROLS
    assert session.camera["view_angle"] == 30.0
    again = read_session(write_session(session, tmp_path / "again.json"))
    assert again == session
    # what the app itself saves reads back
    state = AppState()
    saved = Session(checkpoints={}, controls=state.snapshot(), camera=None, scene=None)
    assert read_session(write_session(saved, tmp_path / "app.json")).controls == state.snapshot()


BAD = [
    ({"alpha": float("nan")}, "not valid JSON (NaN"),
    ({"alpha": 1.5}, "controls.alpha: must be between 0 and 1"),
    ({"alpha": "0.5"}, "controls.alpha: must be a number"),
    ({"seed": 1e30}, "controls.seed: must be a whole number"),
    ({"seed": 2**40}, "controls.seed: must be between"),
    ({"seed": -1}, "controls.seed: must be between"),
    ({"show_image": "no"}, "controls.show_image: must be true or false"),
    ({"correlated": 1}, "controls.correlated: must be true or false"),
    ({"frame": 10**9}, "controls.frame: must be between"),
    ({"subject_id": "x" * 10_000_000}, "controls.subject_id: must be a subject id"),
    ({"subject_id": "../../etc"}, "controls.subject_id: must be a subject id"),
    ({"subject_id": 7}, "controls.subject_id: must be a subject id"),
    ({"target_group": "NOR"}, "controls.target_group: must be one of"),
    ({"conditions": {"age": 300, "sex": "F", "height": 1, "weight": 1, "sbp": 1}}, "age"),
    ({"conditions": {"age": 30, "sex": "X", "height": 170, "weight": 70, "sbp": 120}}, "sex"),
    ({"conditions": [1, 2]}, "controls.conditions: must be an object"),
    ({"n_samples": 0}, "controls.n_samples"),
    ({"cheart_group": "normal"}, "controls.cheart_group: must be one of"),
    ({"cheart_group": None}, "controls.cheart_group: must be one of"),
    ({"sample_index": True}, "controls.sample_index: must be a whole number"),
    ({"controls": {"bogus": 1}}, "unknown control 'bogus'"),
    ({"controls": []}, "session holds no controls"),
    ({"camera": {"position": [0, 0], "focal_point": [0, 0, 0], "view_up": [0, 1, 0]}}, "camera"),
    ({"camera": {**CAMERA, "view_up": [0, 0, 0]}}, "camera.view_up: must not be zero"),
    ({"camera": {**CAMERA, "position": [1e300, 0, 0]}}, "camera.position: must be between"),
    ({"scene": "elsewhere"}, "scene: must be one of"),
    ({"cohort": "c" * 5000}, "cohort: text of 5,000 characters"),
    ({"checkpoints": {"gan": {"path": "x"}}}, "unknown model kind 'gan'"),
    ({"checkpoints": {"spade": {"path": "x", "sha256": "zz"}}}, "sha256: must be 64 hex"),
    ({"checkpoints": {"spade": {"path": 3}}}, "checkpoints.spade.path: must be text"),
    ({"extra": [1]}, "extra: must be a JSON object"),
    ({"extra": {"note": "n" * 100_000}}, "extra: 100,012 characters of JSON"),
    ({"version": 2}, "session version 2 is not supported"),
    ({"surprise": 1}, "unknown key 'surprise'"),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_each_bad_field_is_one_error_naming_file_and_field(changes, message, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(_session_text(**changes))
    with pytest.raises(CardioInputError) as caught:
        read_session(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert len(str(caught.value)) < 400  # a 10 MB string is not echoed back
    assert "\n" not in str(caught.value)


def test_deep_or_huge_files_are_refused(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text(_session_text(extra={"a": json.loads("[" * 100 + "]" * 100)}))
    with pytest.raises(CardioInputError, match="nested deeper"):
        read_session(deep)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CardioInputError, match="not valid JSON"):
        read_session(binary)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    controls=st.dictionaries(st.sampled_from(sorted(CONTROLS)), JSON, max_size=5),
    top=st.dictionaries(
        st.sampled_from(["checkpoints", "camera", "scene", "cohort", "extra", "other"]),
        JSON,
        max_size=3,
    ),
)
def test_any_session_loads_or_is_one_input_error(tmp_path_factory, controls, top):
    path = tmp_path_factory.mktemp("s") / "s.json"
    data = {"format": SESSION_FORMAT, "version": 1, "controls": controls, **top}
    path.write_text(json.dumps(data))
    try:
        session = read_session(path)
    except CardioInputError as error:
        message = str(error)
        assert message.startswith(str(path))
        return
    # what loads can be applied: every control passes the app state's own checks
    state = AppState()
    state.restore(session.controls)
    for name, value in session.controls.items():
        expected = value if name != "conditions" else state.conditions.as_dict()
        assert state.snapshot()[name] == expected


@given(st.binary(max_size=200))
def test_any_bytes_load_or_are_one_input_error(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("b") / "s.json"
    path.write_bytes(blob)
    with pytest.raises(CardioInputError):
        read_session(path)


def test_state_refuses_strings_as_booleans_and_huge_seeds():
    state = AppState()
    with pytest.raises(CardioInputError, match="show_image"):
        state.set("show_image", "no")
    with pytest.raises(CardioInputError, match="seed"):
        state.set("seed", 1e30)
    with pytest.raises(CardioInputError, match="seed"):
        state.set("seed", float("inf"))
    assert state.show_image is False
    assert state.seed == 0
    assert not state.can_undo


def test_undo_stack_is_bounded():
    state = AppState()
    for seed in range(1, MAX_UNDO + 50):
        state.set("seed", seed)
    steps = 0
    while state.undo():
        steps += 1
    assert steps == MAX_UNDO
    assert state.seed == 49  # the oldest 49 steps were dropped
