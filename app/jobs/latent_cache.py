"""t-SNE layouts of the latent atlas, computed once per checkpoint and cohort, then reused.

A t-SNE of the atlas's codes takes seconds; a subject switch must not pay it again. The layout of
the cohort (reference subjects and seeded group samples, fixed for a checkpoint and phase) is kept
in memory and on disk (``$XDG_CACHE_HOME/cardio-explorer/tsne``, keyed by the checkpoint's sha256
and a digest of the codes). Points that are not in the layout, the morph path and a newly opened
heart, are placed out of sample: the inverse-distance-weighted mean of the layout positions of
their nearest cohort codes, so they land among the neighbours they resemble without a re-layout.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cardio_explorer.engine.cheart.trajectories import embed_codes
from cardio_explorer.engine.label_vae.user import USER_GROUP

log = logging.getLogger(__name__)

NEIGHBOURS = 5
_MEMORY: dict[str, TsneLayout] = {}
_LOCK = threading.Lock()
# counts full t-SNE runs (tests check that a subject switch does not start one)
FIT_COUNT = {"n": 0}


@dataclass(frozen=True, eq=False)
class TsneLayout:
    """Cohort codes (N, D), their ids, and their t-SNE positions (N, 2)."""

    codes: np.ndarray
    ids: tuple[str, ...]
    points: np.ndarray


def cache_dir() -> Path:
    """Where layouts are kept between runs (the user's cache folder)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "cardio-explorer" / "tsne"


def layout_key(checkpoint_sha256: str, phase: str, codes: np.ndarray, ids: tuple[str, ...]) -> str:
    """A key naming the checkpoint, the phase and exactly these codes."""
    digest = hashlib.sha256()
    digest.update(f"{checkpoint_sha256}|{phase}|".encode())
    digest.update("\n".join(ids).encode())
    digest.update(np.round(np.asarray(codes, np.float64), 5).tobytes())
    return digest.hexdigest()[:32]


def place_out_of_sample(
    codes: np.ndarray, layout: TsneLayout, neighbours: int = NEIGHBOURS
) -> np.ndarray:
    """(M, 2) positions of new codes (M, D): inverse-distance-weighted mean of the layout
    positions of their ``neighbours`` nearest cohort codes (a code equal to one is put on it)."""
    codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
    distances = np.linalg.norm(codes[:, None, :] - layout.codes[None, :, :], axis=2)
    k = min(neighbours, len(layout.codes))
    nearest = np.argsort(distances, axis=1)[:, :k]
    d = np.take_along_axis(distances, nearest, axis=1)
    weights = 1.0 / np.maximum(d, 1e-9) ** 2
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("mk,mkj->mj", weights, layout.points[nearest])


def _load(key: str) -> TsneLayout | None:
    path = cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return TsneLayout(data["codes"], tuple(str(i) for i in data["ids"]), data["points"])
    except (OSError, ValueError, KeyError) as error:
        log.info("t-SNE cache %s unreadable (%s); laying out again", path, error)
        return None


def _save(key: str, layout: TsneLayout) -> None:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.npz"
        np.savez(tmp, codes=layout.codes, ids=np.array(layout.ids), points=layout.points)
        tmp.replace(folder / f"{key}.npz")
    except OSError as error:  # a read-only home still gets the in-memory cache
        log.info("t-SNE cache not written to %s: %s", folder, error)


def cohort_layout(
    checkpoint_sha256: str, phase: str, codes: np.ndarray, ids: tuple[str, ...]
) -> TsneLayout:
    """The t-SNE layout of these cohort codes: from memory, from disk, or computed (slow)."""

    codes = np.asarray(codes, dtype=np.float64)
    key = layout_key(checkpoint_sha256, phase, codes, ids)
    with _LOCK:
        layout = _MEMORY.get(key)
    if layout is None:
        layout = _load(key)
    if layout is None:
        FIT_COUNT["n"] += 1
        points = embed_codes(codes, "tsne", seed=0).astype(np.float64)
        layout = TsneLayout(codes, tuple(ids), points)
        _save(key, layout)
    with _LOCK:
        _MEMORY[key] = layout
    return layout


def is_cached(checkpoint_sha256: str, phase: str, codes: np.ndarray, ids: tuple[str, ...]) -> bool:
    """True when the layout of these codes is in memory or on disk (no t-SNE to wait for)."""
    key = layout_key(checkpoint_sha256, phase, np.asarray(codes, np.float64), ids)
    with _LOCK:
        if key in _MEMORY:
            return True
    return (cache_dir() / f"{key}.npz").is_file()


def clear_memory() -> None:
    """Forget the in-memory layouts (tests)."""
    with _LOCK:
        _MEMORY.clear()


def tsne_points(
    checkpoint_sha256: str,
    phase: str,
    cohort: np.ndarray,
    groups: tuple[str, ...],
    ids: tuple[str, ...],
    path: np.ndarray,
) -> Iterator[str]:
    """(cohort points, path points): the cached layout of the atlas's own points, your hearts
    and the morph path placed into it out of sample. Yields a progress line before a layout is
    computed (generator; its return value is the pair)."""

    base = np.array([g != USER_GROUP for g in groups])
    base_ids = tuple(i for i, keep in zip(ids, base, strict=True) if keep)
    if not is_cached(checkpoint_sha256, phase, cohort[base], base_ids):
        yield "computing the t-SNE layout of the latent atlas (once per model)…"
    layout = cohort_layout(checkpoint_sha256, phase, cohort[base], base_ids)
    points = np.zeros((len(cohort), 2))
    points[base] = layout.points
    if not base.all():
        points[~base] = place_out_of_sample(cohort[~base], layout)
    return points, place_out_of_sample(path, layout)
