"""A label VAE's latent atlas built again from labelled subjects, the weights left as they are.

The atlas is a summary of the training subjects in the model's latent space. It is rebuilt
when the atlas code learns something new (e.g. group stack lengths, patients' BSA) without
training again, or to put another cohort's subjects into an existing model's atlas. The
validation subjects a checkpoint records are left out, as training left them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.atlas import LatentAtlas, atlas_extra
from cardio_explorer.engine.label_vae.encoding import build_atlas
from cardio_explorer.engine.label_vae.network import load_label_vae, save_label_vae
from cardio_explorer.engine.label_vae.training import prepare_subjects
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.preprocess import DEFAULT_SPACING_MM, frame_of_checkpoint
from cardio_explorer.engine.subject import Subject


def rebuild_atlas(
    checkpoint: str | Path,
    subjects: Sequence[Subject],
    out: str | Path,
    device: torch.device | str = "cpu",
    command: str | None = None,
    progress: bool = False,
) -> LatentAtlas:
    """Write ``out``: ``checkpoint``'s weights and header with an atlas built from ``subjects``."""
    loaded = load_checkpoint(checkpoint, "label_vae")
    model, _ = load_label_vae(loaded, device)
    extra: dict[str, Any] = dict(loaded.extra)
    grid = extra.get("grid", {})
    size = int(grid.get("size", model.config.size))
    spacing = float(grid.get("spacing_mm", DEFAULT_SPACING_MM))
    held = set(extra.get("training", {}).get("val_subjects", []))
    chosen = [s for s in subjects if s.subject_id not in held]
    if not chosen:
        raise CardioInputError("atlas subjects", "none left after leaving out validation ones")
    prepared = prepare_subjects(chosen, size, spacing, frame_of_checkpoint(extra))
    atlas = build_atlas(model, prepared, device, progress=progress)
    extra.update(atlas_extra(atlas))
    extra["atlas_rebuilt"] = {
        "from": str(checkpoint),
        "command": command,
        "n_subjects": len(chosen),
        "n_validation_left_out": len(subjects) - len(chosen),
        "utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    save_label_vae(out, model, extra=extra)
    return atlas
