"""Bundled checkpoints, colour table and default configurations."""

from __future__ import annotations

from pathlib import Path

_FOLDER = Path(__file__).resolve().parent


def bundled_checkpoint(kind: str) -> Path:
    """Path of the bundled checkpoint of a model kind ('label_vae', 'spade', 'cheart').

    The file may be missing (a fresh checkout before a model is trained); callers say how to
    train it.
    """
    return _FOLDER / f"{kind}.safetensors"
