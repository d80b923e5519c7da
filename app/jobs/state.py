"""The app's control state: a small evented model with undo, free of Qt and of any view.

Controllers write it (``set``/``update``); views and the window subscribe to it. The model never
calls a view. Undoable changes go on one stack; a slider drag pushes many ``merge=True`` sets of
one field, which become one undo step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cardio_explorer.app.jobs.query import MorphQuery
from cardio_explorer.engine.cheart.groups import GROUP_CHOICES
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import PATHOLOGY_GROUPS, PHASES, Conditions

Listener = Callable[[str, Any], None]

EMBEDDINGS = ("pca", "tsne")
SWEEP_CONDITIONS = ("age", "height", "weight", "sbp")
MAX_SAMPLES = 8
MAX_SEED = 2**31 - 1  # the seed box's range
MAX_SMOOTHING = 50
MAX_UNDO = 200  # undo steps kept; the oldest go first
DEFAULT_CONDITIONS = Conditions(age=50.0, sex="F", height=165.0, weight=65.0, sbp=120.0)
# CHeart's prior component for generated hearts: normal by default, since the training cohort is
# 20 % per ACDC group and p(group | default conditions) would make 4 in 5 hearts pathological
DEFAULT_CHEART_GROUP = "NOR"


def _alpha(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise CardioInputError("alpha", f"must be a number in [0, 1], got {value!r}")
    return min(1.0, max(0.0, number))  # sliders and sessions may overshoot: clamp, never raise


def _choice(options: tuple[str, ...], what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise CardioInputError(what, f"must be one of {options}, got {value!r}")
        return str(value)

    return check


def _non_negative_int(what: str, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = int(value)
        if number < 0 or (high is not None and number > high):
            raise CardioInputError(what, f"must be in 0..{high or 'inf'}, got {value!r}")
        return number

    return check


def _conditions(value: Any) -> Conditions:
    if isinstance(value, Conditions):
        return value
    if isinstance(value, Mapping):
        return Conditions(**{k: value[k] for k in ("age", "sex", "height", "weight", "sbp")})
    raise CardioInputError("conditions", f"expected Conditions or a mapping, got {value!r}")


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _flag(what: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        # bool("no") is True: only real booleans (numpy's too) are accepted
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise CardioInputError(what, f"must be true or false, got {value!r}")
        return bool(value)

    return check


# name -> (default, validator). Everything a request or the view depends on lives here.
FIELDS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "subject_id": (None, _optional_str),
    "target_group": ("DCM", _choice(PATHOLOGY_GROUPS, "target group")),
    "phase": ("ED", _choice(PHASES, "phase")),
    "alpha": (0.5, _alpha),
    "correlated": (True, _flag("correlated")),
    "seed": (0, _non_negative_int("seed", MAX_SEED)),
    "show_image": (False, _flag("show_image")),
    "smoothing": (10, _non_negative_int("smoothing", MAX_SMOOTHING)),
    "embedding": ("pca", _choice(EMBEDDINGS, "embedding")),
    "conditions": (DEFAULT_CONDITIONS, _conditions),
    "cheart_group": (DEFAULT_CHEART_GROUP, _choice(GROUP_CHOICES, "CHeart group")),
    "n_samples": (1, lambda v: max(1, min(MAX_SAMPLES, int(v)))),
    "sample_index": (0, _non_negative_int("sample_index", MAX_SAMPLES - 1)),
    "frame": (0, _non_negative_int("frame")),
    "sweep_condition": ("age", _choice(SWEEP_CONDITIONS, "sweep condition")),
}
# Playback position and derived choices are not control changes a user wants to undo.
NOT_UNDOABLE = frozenset({"frame"})


@dataclass
class _Step:
    """One undo step: field -> (old, new)."""

    changes: dict[str, tuple[Any, Any]]
    mergeable: bool


class AppState:
    """Current subject, target group, phase, alpha, conditions, frame...; evented, with undo."""

    def __init__(self, **overrides: Any) -> None:
        self._values: dict[str, Any] = {name: default for name, (default, _) in FIELDS.items()}
        for name, value in overrides.items():
            self._values[name] = self._validate(name, value)
        self._listeners: list[Listener] = []
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []

    # reading --------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(name)

    def get(self, name: str) -> Any:
        """Value of one field."""
        self._check_name(name)
        return self._values[name]

    def morph_query(self) -> MorphQuery:
        """The morph the controls describe (subject, target, phase, alpha, sampling, seed)."""
        v = self._values
        return MorphQuery(
            v["subject_id"], v["target_group"], v["phase"], v["alpha"], v["correlated"], v["seed"]
        )

    def snapshot(self) -> dict[str, Any]:
        """All fields as a plain dict (conditions as a dict), e.g. for sessions."""
        out = dict(self._values)
        out["conditions"] = self._values["conditions"].as_dict()
        return out

    # listening ------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(name, value)`` after every change of a field."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling a listener."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # writing --------------------------------------------------------------------------------
    def set(self, name: str, value: Any, *, undoable: bool = True, merge: bool = False) -> bool:
        """Change one field; True when it changed. ``merge`` joins a drag into one undo step."""
        return self.update({name: value}, undoable=undoable, merge=merge)

    def update(
        self, values: Mapping[str, Any], *, undoable: bool = True, merge: bool = False
    ) -> bool:
        """Change several fields as one undo step; listeners hear each changed field."""
        changes: dict[str, tuple[Any, Any]] = {}
        for name, value in values.items():
            new = self._validate(name, value)
            old = self._values[name]
            if new != old:
                changes[name] = (old, new)
        if not changes:
            return False
        for name, (_, new) in changes.items():
            self._values[name] = new
        recorded = {n: c for n, c in changes.items() if n not in NOT_UNDOABLE}
        if undoable and recorded:
            self._push(recorded, merge)
        for name, (_, new) in changes.items():
            self._notify(name, new)
        return True

    def restore(self, values: Mapping[str, Any]) -> None:
        """Set the known fields of a snapshot (unknown keys ignored) as one undo step."""
        self.update({k: v for k, v in values.items() if k in FIELDS})

    # undo -----------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        """True when there is a control change to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """True when an undone change can be redone."""
        return bool(self._redo)

    def undo(self) -> bool:
        """Revert the last control change; False when there is none."""
        if not self._undo:
            return False
        step = self._undo.pop()
        self._redo.append(step)
        self._apply({n: old for n, (old, _) in step.changes.items()})
        return True

    def redo(self) -> bool:
        """Re-apply the last undone change; False when there is none."""
        if not self._redo:
            return False
        step = self._redo.pop()
        self._undo.append(_Step(step.changes, mergeable=False))
        del self._undo[:-MAX_UNDO]
        self._apply({n: new for n, (_, new) in step.changes.items()})
        return True

    def end_merge(self) -> None:
        """Close the current drag: the next change starts a new undo step."""
        if self._undo:
            self._undo[-1].mergeable = False

    # internals ------------------------------------------------------------------------------
    def _push(self, changes: dict[str, tuple[Any, Any]], merge: bool) -> None:
        self._redo.clear()
        last = self._undo[-1] if self._undo else None
        if merge and last is not None and last.mergeable and last.changes.keys() == changes.keys():
            last.changes = {n: (last.changes[n][0], new) for n, (_, new) in changes.items()}
            return
        self._undo.append(_Step(changes, mergeable=merge))
        del self._undo[:-MAX_UNDO]

    def _apply(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            self._values[name] = value
        for name, value in values.items():
            self._notify(name, value)

    def _notify(self, name: str, value: Any) -> None:
        for listener in list(self._listeners):
            listener(name, value)

    def _check_name(self, name: str) -> None:
        if name not in FIELDS:
            raise CardioInputError("state", f"unknown field {name!r}")

    def _validate(self, name: str, value: Any) -> Any:
        self._check_name(name)
        try:
            return FIELDS[name][1](value)
        except (TypeError, ValueError, OverflowError) as error:
            raise CardioInputError(name, f"invalid value {value!r} ({error})") from None
