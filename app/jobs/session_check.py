"""Session files checked in full before any of them is applied: types, ranges, lengths, ids.

A session is data from anywhere (a colleague, a download): every field has a type, a range and
a length, booleans are JSON booleans (``"no"`` is not True) and numbers are finite. What needs
the loaded models (a known subject, a frame of the sequence) is checked by :func:`check_fits`
before the window changes anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cardio_explorer.app.jobs.models import KINDS, Engines
from cardio_explorer.app.jobs.state import (
    EMBEDDINGS,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_SMOOTHING,
    SWEEP_CONDITIONS,
)
from cardio_explorer.engine.cheart.groups import GROUP_CHOICES
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.safe_paths import is_safe_id
from cardio_explorer.engine.limits import (
    CONDITION_BOUNDS,
    MAX_FRAMES,
    MAX_ID_LENGTH,
    MAX_SESSION_EXTRA_CHARS,
    check_count,
    check_real,
    check_text,
)
from cardio_explorer.engine.subject import PATHOLOGY_GROUPS, PHASES, Conditions

SCENES = ("morph", "sequence")
TOP_LEVEL = ("format", "version", "checkpoints", "controls", "camera", "scene", "cohort", "extra")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CAMERA_EXTENT = 1e6  # mm: far beyond any heart scene


def _flag(thing: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise CardioInputError(thing, f"must be true or false, got {value!r}"[:200])
    return value


def _one_of(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(thing: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise CardioInputError(thing, f"must be one of {options}, got {value!r}"[:200])
        return value

    return check


def _subject(thing: str, value: Any) -> str | None:
    if value is not None and not is_safe_id(value):
        raise CardioInputError(
            thing, f"must be a subject id (at most {MAX_ID_LENGTH} letters, digits, '.', '_', '-')"
        )
    return value


def _real(thing: str, value: Any, low: float, high: float) -> float:
    # check_real takes "0.5" too (float() does): a session holds JSON numbers
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CardioInputError(thing, f"must be a number, got {type(value).__name__}")
    return check_real(thing, value, low, high)


def _count(low: int, high: int) -> Callable[[str, Any], int]:
    return lambda thing, value: check_count(thing, value, low, high)


def _conditions(thing: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CardioInputError(thing, "must be an object of age, sex, height, weight, sbp")
    expected = {"sex", *CONDITION_BOUNDS}
    if set(value) != expected:
        raise CardioInputError(thing, f"must hold exactly {sorted(expected)}")
    out: dict[str, Any] = {"sex": _one_of(("F", "M"))(f"{thing}.sex", value["sex"])}
    for name, (low, high) in CONDITION_BOUNDS.items():
        out[name] = _real(f"{thing}.{name}", value[name], low, high)
    try:  # the app's own checks too, so that what passes here applies
        Conditions(**out)
    except CardioInputError as error:
        raise CardioInputError(thing, f"{error.thing}: {error.problem}") from None
    return out


CONTROLS: dict[str, Callable[[str, Any], Any]] = {
    "subject_id": _subject,
    "target_group": _one_of(PATHOLOGY_GROUPS),
    "phase": _one_of(PHASES),
    "alpha": lambda thing, value: _real(thing, value, 0.0, 1.0),
    "correlated": _flag,
    "seed": _count(0, MAX_SEED),
    "show_image": _flag,
    "smoothing": _count(0, MAX_SMOOTHING),
    "embedding": _one_of(EMBEDDINGS),
    "conditions": _conditions,
    "cheart_group": _one_of(GROUP_CHOICES),
    "n_samples": _count(1, MAX_SAMPLES),
    "sample_index": _count(0, MAX_SAMPLES - 1),
    "frame": _count(0, MAX_FRAMES - 1),
    "sweep_condition": _one_of(SWEEP_CONDITIONS),
}


def _object(thing: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CardioInputError(thing, f"must be a JSON object, got {type(value).__name__}")
    return value


def check_controls(value: Any) -> dict[str, Any]:
    """Every control known, of its type and in its range; missing ones keep their values."""
    controls = _object("controls", value)
    unknown = sorted(set(controls) - set(CONTROLS))
    if unknown:
        raise CardioInputError("controls", f"unknown control {unknown[0][:64]!r}")
    return {name: CONTROLS[name](f"controls.{name}", v) for name, v in controls.items()}


def check_checkpoints(value: Any) -> dict[str, dict[str, str]]:
    """{kind: {path, sha256}} with known kinds, bounded paths and real SHA-256 digests."""
    out = {}
    for kind, entry in _object("checkpoints", value or {}).items():
        if kind not in KINDS:
            raise CardioInputError("checkpoints", f"unknown model kind {kind[:64]!r}; {KINDS}")
        entry = _object(f"checkpoints.{kind}", entry)
        path = check_text(f"checkpoints.{kind}.path", entry.get("path"))
        sha256 = entry.get("sha256", "")
        if sha256 != "" and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise CardioInputError(f"checkpoints.{kind}.sha256", "must be 64 hex digits")
        out[kind] = {"path": path, "sha256": sha256}
    return out


def check_camera(value: Any) -> dict[str, Any] | None:
    """None, or position, focal point and view-up of 3 finite numbers each, and a view angle."""
    if value is None:
        return None
    camera = _object("camera", value)
    out: dict[str, Any] = {}
    for key in ("position", "focal_point", "view_up"):
        vector = camera.get(key)
        if not isinstance(vector, list) or len(vector) != 3:
            raise CardioInputError(f"camera.{key}", "must be a list of 3 numbers")
        out[key] = [_real(f"camera.{key}", v, -_CAMERA_EXTENT, _CAMERA_EXTENT) for v in vector]
    if not any(out["view_up"]):
        raise CardioInputError("camera.view_up", "must not be zero")
    if out["position"] == out["focal_point"]:
        raise CardioInputError("camera", "position and focal point must differ")
    out["view_angle"] = _real("camera.view_angle", camera.get("view_angle", 30.0), 1, 179)
    unknown = sorted(set(camera) - set(out))
    if unknown:
        raise CardioInputError("camera", f"unknown key {unknown[0][:64]!r}")
    return out


def _extra(value: Any) -> dict[str, Any]:
    extra = _object("extra", value or {})
    size = len(json.dumps(extra))
    if size > MAX_SESSION_EXTRA_CHARS:
        raise CardioInputError(
            "extra", f"{size:,} characters of JSON; at most {MAX_SESSION_EXTRA_CHARS:,}"
        )
    return extra


def check_session_data(path: Path, data: Any) -> dict[str, Any]:
    """The parsed session's fields, all checked; one error naming the file and the field."""
    try:
        data = _object("session", data)
        unknown = sorted(set(data) - set(TOP_LEVEL))
        if unknown:
            raise CardioInputError("session", f"unknown key {unknown[0][:64]!r}")
        scene = data.get("scene")
        if scene is not None:
            _one_of(SCENES)("scene", scene)
        cohort = data.get("cohort")
        return {
            "checkpoints": check_checkpoints(data.get("checkpoints")),
            "controls": check_controls(data.get("controls")),
            "camera": check_camera(data.get("camera")),
            "scene": scene,
            "cohort": None if cohort is None else check_text("cohort", cohort),
            "extra": _extra(data.get("extra")),
        }
    except CardioInputError as error:
        raise CardioInputError(path, f"{error.thing}: {error.problem}") from None


def check_fits(
    controls: Mapping[str, Any], engines: Engines, source: str | Path, has_hearts: bool = False
) -> None:
    """Refuse a subject, target group or frame the models about to be used do not have.

    ``has_hearts``: the session reopens user hearts, whose ids exist only once they are encoded,
    so its subject may be one of them.
    """
    morph = engines.morph
    subject = controls.get("subject_id")
    known = morph is None or subject is None or subject in morph.atlas.reference_ids
    if not known and not has_hearts:
        raise CardioInputError(
            source, f"controls.subject_id: unknown subject {subject!r} (not in the label VAE)"
        )
    group = controls.get("target_group")
    if morph is not None and group is not None and group not in morph.atlas.groups:
        raise CardioInputError(source, f"controls.target_group: the label VAE has no {group}")
    cheart = engines.cheart
    frame = controls.get("frame")
    if cheart is not None and frame is not None and frame >= cheart.config.n_frames:
        raise CardioInputError(
            source, f"controls.frame: {frame} is past the last frame ({cheart.config.n_frames - 1})"
        )
