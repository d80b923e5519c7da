"""Where the bundled checkpoints live, and the one error for a checkpoint file that is missing."""

from __future__ import annotations

from pathlib import Path

from cardio_explorer import resources
from cardio_explorer.engine.errors import CardioInputError

LABEL_VAE_TRAIN_HINT = (
    "train one with `cardio-explorer train label-vae --data COHORT --out "
    "resources/label_vae.safetensors` (see the README)"
)


def resolve_checkpoint(path: Path | None, bundled_path: Path, model: str, hint: str) -> Path:
    """``path``, or ``bundled_path`` when None; a clear error (with ``hint``) when it is missing.

    ``model`` names the bundled file in that error (e.g. "bundled SPADE model").
    """
    resolved = Path(path) if path is not None else bundled_path
    if not resolved.is_file():
        what = "--checkpoint" if path is not None else model
        raise CardioInputError(what, f"{resolved} not found; {hint}")
    return resolved


def label_vae_checkpoint(path: Path | None) -> Path:
    """``path``, or the bundled label VAE when None; a clear error when the file is missing."""
    return resolve_checkpoint(
        path, resources.bundled_checkpoint("label_vae"), "bundled label VAE", LABEL_VAE_TRAIN_HINT
    )
