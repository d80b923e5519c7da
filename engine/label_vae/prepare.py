"""Label VAE training subjects, preprocessed once into the frame the model learns in."""

from __future__ import annotations

from collections.abc import Sequence

from cardio_explorer.engine.preprocess import DEFAULT_FRAME, preprocess_subject
from cardio_explorer.engine.subject import Subject

__all__ = ["prepare_subjects"]


def prepare_subjects(
    subjects: Sequence[Subject],
    size: int = 128,
    spacing_mm: float = 1.5,
    frame: str = DEFAULT_FRAME,
) -> list[Subject]:
    """Preprocess subjects not yet preprocessed (orientation, spacing_mm in-plane, size crop,
    ``frame``: anatomical or header)."""
    out = []
    for subject in subjects:
        done = subject.info.get("preprocess", {})
        done_frame = (done.get("frame") or {}).get("kind", DEFAULT_FRAME)
        if (done.get("size"), done.get("spacing_mm"), done_frame) == (size, spacing_mm, frame):
            out.append(subject)
        else:
            out.append(preprocess_subject(subject, spacing_mm=spacing_mm, size=size, frame=frame))
    return out
