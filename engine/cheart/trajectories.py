"""Latent trajectories: the per-frame codes of a heartbeat and their 2D embedding.

A generated sequence's codes are the LSTM latents that the decoder turned into its frames. A
labelled 3D+t sequence is encoded frame by frame (posterior mean, the same encoder that reads
the ED frame), so both kinds of path live in the same space. The 2D embedding is PCA (fast,
deterministic, and a fitted projection that new paths can be added to) or t-SNE (scikit-learn;
better separated clusters, refitted on everything each time).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from cardio_explorer.engine.cheart.conditions import parse_conditions
from cardio_explorer.engine.cheart.data import SequenceSet, to_model_grid
from cardio_explorer.engine.cheart.inference import SequenceResult
from cardio_explorer.engine.cheart.model import CHeartModel
from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import Conditions
from cardio_explorer.engine.volume import LabelVolume

Method = Literal["pca", "tsne"]
ENCODE_BATCH = 32
_TSNE_THREADED_FROM = 2000


def encode_frames(
    model: CHeartModel, frames: np.ndarray, conditions: list[Conditions]
) -> np.ndarray:
    """Posterior means [N, z] of label frames [N, D, H, W] on the model grid."""
    codes = []
    with torch.inference_mode(), autocast(model.device):
        for start in range(0, len(frames), ENCODE_BATCH):
            x = torch.from_numpy(frames[start : start + ENCODE_BATCH].astype(np.int64))
            cond = model.stats.matrix(conditions[start : start + ENCODE_BATCH])
            mu, _ = model.net.encode(x.to(model.device), torch.from_numpy(cond).to(model.device))
            codes.append(mu.float().cpu().numpy())
    return np.concatenate(codes) if codes else np.zeros((0, model.config.z_dim), np.float32)


def latent_trajectory(
    model: CHeartModel,
    sequence: SequenceResult | LabelVolume,
    conditions: Conditions | dict[str, Any] | None = None,
) -> np.ndarray:
    """Per-frame latent codes [T, z] of a generated result or of a labelled 3D+t volume.

    A volume is encoded frame by frame; ``conditions`` default to the training means (they
    matter only when the encoder is conditioned).
    """
    if isinstance(sequence, SequenceResult):
        return np.asarray(sequence.latents, dtype=np.float32)
    if not isinstance(sequence, LabelVolume) or not sequence.is_4d:
        raise CardioInputError("sequence", "expected a SequenceResult or a 3D+t LabelVolume")
    c = model.stats.typical() if conditions is None else parse_conditions(conditions)
    # One placement for the whole cycle (centred on frame 0), as in training.
    on_grid = to_model_grid(sequence, model.config.grid, model.config.spacing)
    return encode_frames(model, on_grid.data, [c] * sequence.n_frames)


def cohort_codes(model: CHeartModel, sequences: SequenceSet) -> np.ndarray:
    """Per-frame codes [N, T, z] of a cohort already on the model grid."""
    n, t = sequences.labels.shape[:2]
    if tuple(sequences.labels.shape[2:]) != tuple(model.config.grid):
        raise CardioInputError(
            "cohort",
            f"sequences are on grid {sequences.labels.shape[2:]}, "
            f"the model's is {model.config.grid}",
        )
    conditions = [c for c in sequences.conditions for _ in range(t)]
    flat = sequences.labels.reshape(n * t, *sequences.labels.shape[2:])
    return encode_frames(model, flat, conditions).reshape(n, t, -1)


def embed_codes(codes: np.ndarray, method: Method = "pca", seed: int = 0) -> np.ndarray:
    """2D embedding of codes [..., z] (any leading shape, e.g. [N, T, z]) -> [..., 2].

    Embed the cohort's codes and a trajectory together (concatenate them first) so that the
    path is drawn among the cohort. t-SNE needs at least 5 points; fewer fall back to PCA.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim < 2 or codes.shape[-1] < 1:
        raise CardioInputError("codes", f"expected an array [..., z], got shape {codes.shape}")
    if method not in ("pca", "tsne"):
        raise CardioInputError("method", f"must be 'pca' or 'tsne', got {method!r}")
    lead = codes.shape[:-1]
    flat = codes.reshape(-1, codes.shape[-1])
    if not np.all(np.isfinite(flat)):
        raise CardioInputError("codes", "contain NaN or infinite values")
    n = flat.shape[0]
    if method == "tsne" and n >= 5:
        # sklearn takes seconds to import: only a t-SNE embedding needs it, not the app's start
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perplexity = float(min(30.0, (n - 1) / 3.0))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        # Small problems are all thread overhead: OpenMP barriers on a busy 2-core CPU turned
        # 0.2 s into a minute. Threads only pay off for thousands of points.
        with threadpool_limits(limits=1 if n < _TSNE_THREADED_FROM else None):
            points = tsne.fit_transform(flat)
    else:
        points = pca_2d(flat)
    return points.astype(np.float32).reshape(*lead, 2)


def pca_2d(flat: np.ndarray) -> np.ndarray:
    """Projection of [N, z] on its first two principal axes (zeros where there are fewer)."""
    centred = flat - flat.mean(axis=0, keepdims=True)
    points = np.zeros((flat.shape[0], 2))
    if flat.shape[0] < 2:
        return points
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    # Fix each axis's sign (largest loading positive) so repeated calls draw the same picture.
    axes = vt[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])
    axes = axes * np.where(signs == 0, 1, signs)[:, None]
    points[:, : len(axes)] = centred @ axes.T
    return points
