"""A user's own heart as a morph source: preprocessed like the atlas, encoded, joined to it.

The heart is preprocessed exactly as the training subjects (canonical orientation, in-plane
resampling, one crop), encoded slice by slice to posterior means and resampled to the atlas's 32
slices. A heart with an ED frame only gets an estimated ES: its ED codes moved by the atlas's
mean NOR ED -> ES shift (per slice and latent dimension), so phenotypes and EF stay defined.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch
from nibabel import orientations
from scipy.ndimage import map_coordinates

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.atlas import (
    REFERENCE_GROUP,
    LatentAtlas,
    ReferenceSubject,
    StackGeometry,
)
from cardio_explorer.engine.label_vae.encoding import encode_stack, encode_subject
from cardio_explorer.engine.label_vae.morph import decode_codes
from cardio_explorer.engine.preprocess import preprocess_subject
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import LabelVolume, Volume

V = TypeVar("V", bound=Volume)
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
    """``subject_id``, or it with '-2', '-3'... when the atlas already has that id (a suffix that
    keeps the id a safe file name: exports are named after it)."""
    if subject_id not in taken:
        return subject_id
    n = 2
    while f"{subject_id}-{n}" in taken:
        n += 1
    return f"{subject_id}-{n}"


def encode_user_heart(
    model: torch.nn.Module,
    atlas: LatentAtlas,
    subject: Subject,
    device: torch.device | str = "cpu",
    size: int | None = None,
    frame: str = "anatomical",
) -> UserHeart:
    """Preprocess (into the model's ``frame``) and encode ``subject`` into a morph source."""
    if not subject.labels:
        raise CardioInputError(subject.subject_id, "holds no label frame")
    size = int(size or model.config.size)
    notes = list(subject.info.get("notes", []))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = preprocess_subject(subject, size=size, frame=frame)
    notes.extend(str(w.message) for w in caught)
    ed = prepared.labels.get(prepared.ed_frame)
    if ed is None or not np.any(ed.data):
        raise CardioInputError(subject.subject_id, "the ED frame holds no heart (all background)")
    prepared, pose_note = best_inplane_pose(model, prepared, device)
    if pose_note:
        notes.append(pose_note)
    reference, _ = encode_subject(model, prepared, device, atlas.n_slices)
    sid = unique_id(subject.subject_id, frozenset(atlas.references))
    reference = replace(reference, subject_id=sid, group=USER_GROUP)
    estimated = "ES" not in reference.codes
    if estimated:
        reference = with_estimated_es(reference, atlas)
        notes.append("ES estimated from the atlas's mean NOR ED -> ES shift")
    return UserHeart(reference, replace(prepared, subject_id=sid), subject, tuple(notes), estimated)


# The 8 in-plane poses of a (x, y, z) array: x and y swapped or not, each flipped or not.
POSES = tuple(
    np.array([[a, fa], [b, fb], [2, 1]])
    for a, b in ((0, 1), (1, 0))
    for fa in (1, -1)
    for fb in (1, -1)
)


def posed(volume: V, ornt: np.ndarray) -> V:
    """``volume`` with its array turned in-plane by ``ornt``; the affine follows, so every voxel
    keeps its world position (the heart itself does not move)."""
    if np.array_equal(ornt, POSES[0]):
        return volume
    xyz = volume.data.transpose(tuple(range(volume.data.ndim))[::-1])
    moved = orientations.apply_orientation(xyz, ornt)
    data = np.ascontiguousarray(moved.transpose(tuple(range(moved.ndim))[::-1]))
    affine = volume.affine @ orientations.inv_ornt_aff(ornt, xyz.shape[:3])
    return replace(volume, data=data, affine=affine)


def reconstruction_dice(model: torch.nn.Module, labels: LabelVolume, device) -> float:
    """Mean Dice of LV, MYO and RV between a stack and its decoded posterior means."""
    decoded = decode_codes(model, encode_stack(model, labels, device), device)
    scores = []
    for value in (1, 2, 3):
        a, b = decoded == value, labels.data == value
        total = int(a.sum() + b.sum())
        if total:
            scores.append(2.0 * float(np.logical_and(a, b).sum()) / total)
    return float(np.mean(scores)) if scores else 0.0


def best_inplane_pose(
    model: torch.nn.Module, prepared: Subject, device: torch.device | str = "cpu"
) -> tuple[Subject, str]:
    """The subject in the in-plane pose the label VAE reconstructs best, and a note.

    The bundled models learned ACDC's array convention (its files carry no real orientation),
    while a scanner's file is put in a canonical patient frame: the same heart can then lie
    rotated or mirrored in the array. Each of the 8 poses of the ED stack is encoded and
    decoded; the best Dice wins (the affine moves with the array, so world positions stay).
    """
    ed = prepared.labels[prepared.ed_frame]
    scores = [reconstruction_dice(model, posed(ed, ornt), device) for ornt in POSES]
    best = int(np.argmax(scores))
    if best == 0 or scores[best] <= scores[0] + 0.02:
        return prepared, ""
    ornt = POSES[best]
    turned = replace(
        prepared,
        labels={t: posed(v, ornt) for t, v in prepared.labels.items()},
        images={t: posed(v, ornt) for t, v in prepared.images.items()},
    )
    note = (
        f"turned in-plane to the models' array convention (reconstruction Dice "
        f"{scores[0]:.2f} as read, {scores[best]:.2f} turned; world positions unchanged)"
    )
    return turned, note


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


def to_own_grid(volume: V, like: LabelVolume) -> V:
    """``volume`` resampled onto ``like``'s voxel grid through world mm: labels by nearest
    neighbour, images linearly (0 outside).

    A morph of a user heart lies on the preprocessed grid (canonical orientation, 1.5 mm
    in-plane, cropped, turned to the models' pose); this puts it back on the grid and affine of
    the user's own file.
    """
    nz, ny, nx = like.spatial_shape
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    index = np.stack([x.ravel(), y.ravel(), z.ravel(), np.ones(x.size)])
    sx, sy, sz = (np.linalg.inv(volume.affine) @ (like.affine @ index))[:3]
    if isinstance(volume, LabelVolume):
        sx, sy, sz = (np.rint(v).astype(np.int64) for v in (sx, sy, sz))
        dz, dy, dx = volume.spatial_shape
        inside = (sx >= 0) & (sx < dx) & (sy >= 0) & (sy < dy) & (sz >= 0) & (sz < dz)
        out = np.zeros(x.size, dtype=volume.data.dtype)
        out[inside] = volume.data[sz[inside], sy[inside], sx[inside]]
    else:
        out = map_coordinates(volume.data, np.stack([sz, sy, sx]), order=1, cval=0.0)
        out = out.astype(volume.data.dtype)
    return replace(
        volume,
        data=out.reshape(nz, ny, nx),
        affine=like.affine.copy(),
        name=f"{volume.name} (own grid)",
    )
