"""Validation of CHeart training: Dice of sequences completed from their ED frame."""

from __future__ import annotations

import numpy as np
import torch

from cardio_explorer.engine.cheart.conditions import ConditionStats
from cardio_explorer.engine.cheart.data import SequenceSet
from cardio_explorer.engine.cheart.network import CHeartNet
from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.labels import STRUCTURES
from cardio_explorer.engine.metrics.overlap import dice_scores

_EVAL_BATCH = 4


@torch.inference_mode()
def completion_dice(
    net: CHeartNet, sequences: SequenceSet, stats: ConditionStats, device: torch.device
) -> dict[str, float]:
    """Mean over sequences of the Dice pooled over all frames, completing each from its ED."""
    was_training = net.training
    net.eval()
    scores = []
    try:
        labels = torch.from_numpy(sequences.labels)
        for start in range(0, len(sequences), _EVAL_BATCH):
            batch = labels[start : start + _EVAL_BATCH].to(device)
            cond = torch.from_numpy(
                stats.matrix(sequences.conditions[start : start + len(batch)])
            ).to(device)
            with autocast(device):
                out = net(batch[:, 0], cond, sample=False)
            predicted = out.labels().cpu().numpy()
            for p, r in zip(predicted, sequences.labels[start : start + len(batch)], strict=True):
                scores.append(dice_scores(p, r))
    finally:
        net.train(was_training)
    mean = np.mean(scores, axis=0)
    result = {name: float(v) for name, v in zip(STRUCTURES, mean, strict=True)}
    result["mean"] = float(mean.mean())
    return result
