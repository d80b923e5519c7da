"""Open a user's heart on the worker thread: read, preprocess, encode (the GUI thread then joins
it to the morph's atlas as the atlas is by then)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cardio_explorer.app.jobs.morph import require
from cardio_explorer.app.jobs.protocol import IsCurrent
from cardio_explorer.engine.io.heart import read_heart
from cardio_explorer.engine.label_vae.user import UserHeart, encode_user_heart


@dataclass(frozen=True)
class HeartRequest:
    """Read the heart at ``paths`` (a file, an ED/ES pair or a subject folder) and encode it."""

    request_id: int
    engines: Any  # Engines
    paths: tuple[Path, ...]
    lane: ClassVar[str] = "heart"
    error_title: ClassVar[str] = "Cannot open heart"


@dataclass(frozen=True, eq=False)
class HeartOutput:
    """The encoded heart and the paths it was read from."""

    heart: UserHeart
    paths: tuple[Path, ...]


def run_heart(request: HeartRequest, is_current: IsCurrent) -> Iterator[str]:
    """Read (one step), then preprocess and encode (another), so other lanes run between."""

    morph = require(request.engines, "label_vae")
    subject = read_heart(request.paths)
    yield f"read {subject.subject_id}; encoding…"
    heart = encode_user_heart(morph.model, morph.atlas, subject, morph.device, frame=morph.frame)
    return HeartOutput(heart, tuple(request.paths))
