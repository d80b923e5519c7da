"""Sessions: what is needed to see the same view again (checkpoint hashes, controls, camera)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardio_explorer.app.jobs.models import KINDS, Engines
from cardio_explorer.app.jobs.session_check import check_session_data
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write_text
from cardio_explorer.engine.limits import check_file_size, load_json

SESSION_FORMAT = "cardio-explorer session"
SESSION_VERSION = 1


@dataclass(frozen=True)
class Session:
    """A saved view: checkpoints {kind: {path, sha256}}, controls, camera, scene, cohort."""

    checkpoints: dict[str, dict[str, str]]
    controls: dict[str, Any]
    camera: dict[str, Any] | None = None
    scene: str | None = None
    cohort: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(
            {
                "format": SESSION_FORMAT,
                "version": SESSION_VERSION,
                "checkpoints": self.checkpoints,
                "controls": self.controls,
                "camera": self.camera,
                "scene": self.scene,
                "cohort": self.cohort,
                "extra": self.extra,
            },
            indent=2,
        )


def checkpoints_of(engines: Engines) -> dict[str, dict[str, str]]:
    """Path and SHA-256 of every loaded checkpoint."""
    out = {}
    for kind in KINDS:
        slot = engines.slot(kind)
        if slot.ready and slot.path is not None:
            out[kind] = {"path": str(slot.path), "sha256": slot.sha256}
    return out


def write_session(session: Session, path: str | Path) -> Path:
    """Write a session JSON file atomically."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise CardioInputError(path, "a session file must end in .json")
    return atomic_write_text(path, session.to_json())


def read_session(path: str | Path) -> Session:
    """Read and check a whole session file; one clear error for anything wrong in it.

    Nothing is applied here: a session that comes back is valid throughout.
    """
    path = Path(path)
    if not path.is_file():
        raise CardioInputError(path, "session file not found")
    check_file_size(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise CardioInputError(path, f"cannot read ({error.strerror})") from None
    data = load_json(path, text)
    if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
        raise CardioInputError(path, "not a cardio-explorer session file")
    if data.get("version") != SESSION_VERSION:
        shown = repr(data.get("version"))[:20]
        raise CardioInputError(path, f"session version {shown} is not supported")
    if not isinstance(data.get("controls"), dict):
        raise CardioInputError(path, "session holds no controls")
    return Session(**check_session_data(path, data))


def checkpoint_mismatches(session: Session, engines: Engines) -> list[str]:
    """One line per checkpoint whose hash differs from the session's (the view may differ)."""
    notes = []
    for kind, saved in session.checkpoints.items():
        slot = engines.slot(kind)
        if not slot.ready:
            notes.append(f"{kind}: the session used {saved.get('path')}, which is not loaded")
        elif saved.get("sha256") and saved["sha256"] != slot.sha256:
            notes.append(
                f"{kind}: loaded checkpoint {slot.path} differs from the session's "
                f"({saved['sha256'][:12]}... vs {slot.sha256[:12]}...)"
            )
    return notes
