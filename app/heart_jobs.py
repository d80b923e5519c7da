"""Open a user's heart on the worker thread: read, preprocess, encode, join the morph's atlas."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cardio_explorer.app.jobs import IsCurrent, require
from cardio_explorer.engine.pathology.user import UserHeart


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
    """A morph engine whose atlas also holds the heart, and the encoded heart."""

    morph: Any  # PathologyMorph
    heart: UserHeart
    paths: tuple[Path, ...]


def run_heart(request: HeartRequest, is_current: IsCurrent) -> Iterator[str]:
    """Read (one step), then preprocess and encode (another), so other lanes run between."""
    from cardio_explorer.engine.io.heart import read_heart
    from cardio_explorer.engine.pathology.morph import PathologyMorph
    from cardio_explorer.engine.pathology.user import encode_user_heart, join_atlas

    morph = require(request.engines, "label_vae")
    subject = read_heart(request.paths)
    yield f"read {subject.subject_id}; encoding…"
    heart = encode_user_heart(morph.model, morph.atlas, subject, morph.device)
    atlas = join_atlas(morph.atlas, heart.reference)
    new_morph = PathologyMorph(morph.model, atlas, morph.device, optimise=False)
    return HeartOutput(new_morph, heart, tuple(request.paths))
