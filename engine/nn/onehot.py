"""The one one-hot encoding of label maps that every network here takes as input."""

from __future__ import annotations

import torch
from torch.nn import functional

from cardio_explorer.engine.labels import LABEL_TABLE

N_LABELS = len(LABEL_TABLE.values)


def one_hot(labels: torch.Tensor, n_classes: int = N_LABELS) -> torch.Tensor:
    """Integer labels [B, *spatial] -> float one-hot [B, n_classes, *spatial].

    The class axis stays innermost in memory (functional.one_hot appends it), which is the
    channels_last layout for 2D maps and channels_last_3d for 3D volumes.
    """
    return functional.one_hot(labels.long(), n_classes).movedim(-1, 1).float()
