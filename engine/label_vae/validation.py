"""Validation of label VAE training: Dice of posterior-mean reconstructions per 3D stack."""

from __future__ import annotations

import numpy as np
import torch

from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.label_vae.network import LabelVAE
from cardio_explorer.engine.labels import STRUCTURES
from cardio_explorer.engine.metrics.overlap import dice_scores
from cardio_explorer.engine.nn.onehot import one_hot
from cardio_explorer.engine.nn.slices import LabelSlices

_EVAL_BATCH = 128


@torch.inference_mode()
def reconstruction_dice(
    model: LabelVAE, slices: LabelSlices, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Dice of mu-reconstructions per (subject, phase) 3D stack, averaged over stacks.

    Returns {lv, myo, rv, mean}. A structure absent from both a stack and its reconstruction
    counts as 1 (engine.metrics.overlap convention).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        predicted = np.empty_like(slices.labels)
        labels = torch.from_numpy(slices.labels)
        for start in range(0, len(labels), _EVAL_BATCH):
            batch = labels[start : start + _EVAL_BATCH].to(device)
            with autocast(device):
                mu, _ = model.encode(one_hot(batch, model.config.n_classes))
                logits = model.decode(mu)
            predicted[start : start + len(batch)] = logits.argmax(1).to(torch.uint8).cpu().numpy()
    finally:
        model.train(was_training)
    scores = np.array(
        [dice_scores(predicted[idx], slices.labels[idx]) for _, _, idx in slices.stacks()]
    )
    per_structure = scores.mean(axis=0)
    result = {name: float(v) for name, v in zip(STRUCTURES, per_structure, strict=True)}
    result["mean"] = float(per_structure.mean())
    return result
