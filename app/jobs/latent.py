"""Latent view job, run on the worker thread: the atlas's codes, samples of each pathology group
and the current morph path, embedded in 2D (PCA, or a cached t-SNE layout)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cardio_explorer.app.jobs.latent_cache import tsne_points
from cardio_explorer.app.jobs.models import Engines
from cardio_explorer.app.jobs.morph import PATH_ALPHAS, require
from cardio_explorer.app.jobs.protocol import IsCurrent
from cardio_explorer.app.jobs.query import MorphQuery

GROUP_SAMPLES = 6  # pseudo-pathology samples drawn per group in the latent view
_GROUP_SAMPLE_SEED = 1000


@dataclass(frozen=True)
class LatentRequest:
    """The atlas's codes and the current morph path, embedded in 2D (PCA or t-SNE)."""

    request_id: int
    engines: Engines
    query: MorphQuery  # its phase; the path runs over PATH_ALPHAS, not its alpha
    method: str = "pca"
    lane: ClassVar[str] = "latent"


@dataclass(frozen=True, eq=False)
class LatentOutput:
    """Cohort points (N, 2) with groups and ids, and the morph path (K, 2) at ``path_alphas``."""

    points: np.ndarray
    groups: tuple[str, ...]
    ids: tuple[str, ...]
    path: np.ndarray
    path_alphas: tuple[float, ...]
    method: str
    axis_names: tuple[str, str]

    def point_at(self, alpha: float) -> np.ndarray:
        """The path's 2D position at alpha (interpolated between its steps)."""
        a = np.asarray(self.path_alphas)
        return np.array([np.interp(alpha, a, self.path[:, i]) for i in range(2)])


def fit_pca(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, axes (2, D)) of the first two principal axes, signs fixed for stable pictures."""
    mean = codes.mean(axis=0)
    axes = np.zeros((2, codes.shape[1]))
    if len(codes) >= 2:
        _, _, vt = np.linalg.svd(codes - mean, full_matrices=False)
        found = vt[:2]
        signs = np.sign(found[np.arange(len(found)), np.argmax(np.abs(found), axis=1)])
        axes[: len(found)] = found * np.where(signs == 0, 1, signs)[:, None]
    return mean, axes


def run_latent(request: LatentRequest, is_current: IsCurrent) -> Iterator[str]:
    """Reference subjects (their own group) and seeded samples of each pathology group; t-SNE
    lays them out once per checkpoint and cohort (:mod:`cardio_explorer.app.jobs.latent_cache`)."""
    morph = require(request.engines, "label_vae")
    atlas, query, phase = morph.atlas, request.query, request.query.phase
    codes, groups, ids = [], [], []
    for sid in atlas.reference_ids:
        ref = atlas.reference(sid)
        if phase in ref.codes:
            codes.append(ref.codes[phase].ravel())
            groups.append(ref.group or "NOR")
            ids.append(sid)
    for group in atlas.groups:
        if group == "NOR" or (group, phase) not in atlas.stats:
            continue
        for s in range(GROUP_SAMPLES):
            sample = morph.sampler.sample(None, group, phase, True, _GROUP_SAMPLE_SEED + s)
            codes.append(np.asarray(sample).ravel())
            groups.append(group)
            ids.append(f"{group} sample {s + 1}")
    path = np.stack([query.latent_path(morph, alpha).ravel() for alpha in PATH_ALPHAS])
    cohort = np.stack(codes)
    if request.method == "tsne":
        sha = request.engines.slot("label_vae").sha256
        points, path_2d = yield from tsne_points(
            sha, phase, cohort, tuple(groups), tuple(ids), path
        )
        names = ("t-SNE 1", "t-SNE 2")
    else:
        mean, axes = fit_pca(cohort)
        points, path_2d = (cohort - mean) @ axes.T, (path - mean) @ axes.T
        names = ("PC 1", "PC 2")
    return LatentOutput(
        points, tuple(groups), tuple(ids), path_2d, PATH_ALPHAS, request.method, names
    )
