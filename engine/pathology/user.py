"""A user's own heart as a morph source: preprocessed like the atlas, encoded, joined to it.

The heart is preprocessed exactly as the training subjects (canonical orientation, in-plane
resampling, one crop), encoded slice by slice to posterior means and resampled to the atlas's 32
slices. A heart with an ED frame only gets an estimated ES: its ED codes moved by the atlas's
mean NOR ED -> ES shift (per slice and latent dimension), so phenotypes and EF stay defined.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.pathology.atlas import (
    REFERENCE_GROUP,
    LatentAtlas,
    ReferenceSubject,
    StackGeometry,
    encode_subject,
)
from cardio_explorer.engine.preprocess import preprocess_subject
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume

USER_GROUP = "yours"  # the group a user's heart shows under (subject list, latent view)


@dataclass(frozen=True, eq=False)
class UserHeart:
    """An encoded user heart: the morph source, the preprocessed subject, the raw one, notes."""

    reference: ReferenceSubject
    prepared: Subject
    raw: Subject
    notes: tuple[str, ...]
    es_estimated: bool


def unique_id(subject_id: str, taken: set[str] | frozenset[str]) -> str:
    """``subject_id``, or it with ' (2)', ' (3)'... when the atlas already has that id."""
    if subject_id not in taken:
        return subject_id
    n = 2
    while f"{subject_id} ({n})" in taken:
        n += 1
    return f"{subject_id} ({n})"


def encode_user_heart(
    model: torch.nn.Module,
    atlas: LatentAtlas,
    subject: Subject,
    device: torch.device | str = "cpu",
    size: int | None = None,
) -> UserHeart:
    """Preprocess and encode ``subject`` into a morph source of ``atlas``."""
    if not subject.labels:
        raise CardioInputError(subject.subject_id, "holds no label frame")
    size = int(size or model.config.size)
    notes = list(subject.info.get("notes", []))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = preprocess_subject(subject, size=size)
    notes.extend(str(w.message) for w in caught)
    ed = prepared.labels.get(prepared.ed_frame)
    if ed is None or not np.any(ed.data):
        raise CardioInputError(subject.subject_id, "the ED frame holds no heart (all background)")
    reference, _ = encode_subject(model, prepared, device, atlas.n_slices)
    sid = unique_id(subject.subject_id, frozenset(atlas.references))
    reference = replace(reference, subject_id=sid, group=USER_GROUP)
    estimated = "ES" not in reference.codes
    if estimated:
        reference = with_estimated_es(reference, atlas)
        notes.append("ES estimated from the atlas's mean NOR ED -> ES shift")
    return UserHeart(reference, replace(prepared, subject_id=sid), subject, tuple(notes), estimated)


def with_estimated_es(reference: ReferenceSubject, atlas: LatentAtlas) -> ReferenceSubject:
    """``reference`` with ES codes = its ED codes + the NOR group's mean ES - mean ED."""
    ed = reference.phase_codes("ED")
    shift = (
        atlas.group_stats(REFERENCE_GROUP, "ES").mean
        - atlas.group_stats(REFERENCE_GROUP, "ED").mean
    )
    geometry = reference.geometry["ED"]
    return replace(
        reference,
        codes={**reference.codes, "ES": ed + np.nan_to_num(shift)},
        geometry={**reference.geometry, "ES": StackGeometry(geometry.affine, geometry.n_slices)},
    )


def join_atlas(atlas: LatentAtlas, reference: ReferenceSubject) -> LatentAtlas:
    """The atlas with one more morph source (every existing one kept)."""
    return atlas.with_references([*atlas.references.values(), reference])


def to_own_grid(labels: LabelVolume, like: LabelVolume) -> LabelVolume:
    """``labels`` resampled (nearest neighbour, through world mm) onto ``like``'s voxel grid.

    A morph of a user heart lies on the preprocessed grid (canonical orientation, 1.25 mm
    in-plane, cropped); this puts it back on the grid and affine of the user's own file.
    """
    nz, ny, nx = like.spatial_shape
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    index = np.stack([x.ravel(), y.ravel(), z.ravel(), np.ones(x.size)])
    source = np.linalg.inv(labels.affine) @ (like.affine @ index)
    sx, sy, sz = (np.rint(source[i]).astype(np.int64) for i in range(3))
    dz, dy, dx = labels.spatial_shape
    inside = (sx >= 0) & (sx < dx) & (sy >= 0) & (sy < dy) & (sz >= 0) & (sz < dz)
    out = np.zeros(x.size, dtype=np.uint8)
    out[inside] = labels.data[sz[inside], sy[inside], sx[inside]]
    return LabelVolume(
        data=out.reshape(nz, ny, nx), affine=like.affine.copy(), name=f"{labels.name} (own grid)"
    )
