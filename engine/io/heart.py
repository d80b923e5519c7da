"""One user's heart from whatever they point at: a label NIfTI, an ED/ES pair, a subject folder.

Accepted: an ACDC subject folder (Info.cfg), an M&Ms subject folder (release or flat layout, one
subject), a folder holding one subject's label files, a single label NIfTI (3D: the ED frame;
3D+t: ED the largest LV cavity, ES the smallest), or two 3D label files (ED and ES, told apart by
their names or else by LV cavity size). A file from a folder of one of these layouts reads the
whole subject. The image of each labelled frame is read too when it lies beside the labels
(``<name>_gt.nii.gz`` -> ``<name>.nii.gz``). Label values: internal (1 LV, 2 MYO, 3 RV) unless the
file is ACDC's or its blood pool enclosed by myocardium says 3 is the LV.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.acdc import INFO_CFG, read_acdc_subject
from cardio_explorer.engine.io.common import check_same_grid, split_frames
from cardio_explorer.engine.io.mnms import mnms_subject_paths, read_mnms_subject
from cardio_explorer.engine.io.nifti import (
    is_nifti_path,
    nifti_stem,
    read_image_volume,
    read_label_volume,
)
from cardio_explorer.engine.labels import ACDC_TO_INTERNAL, Label, remap
from cardio_explorer.engine.subject import PHASES, Subject
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

_ES_NAME = re.compile(r"(^|[_\-. ])(ES|systole|systolic)([_\-. ]|$)", re.IGNORECASE)
_ED_NAME = re.compile(r"(^|[_\-. ])(ED|diastole|diastolic)([_\-. ]|$)", re.IGNORECASE)
_PHASE_TOKEN = re.compile(r"(?<=[_\-. ])(ED|ES)(?=[_\-. ]|$)", re.IGNORECASE)
_ACDC_FRAME = re.compile(r"^patient\d+_frame\d+_gt$", re.IGNORECASE)


def read_heart(paths: str | Path | Sequence[str | Path]) -> Subject:
    """The subject behind ``paths`` (one folder, one file or an ED/ES file pair), raw grid."""
    items = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not items:
        raise CardioInputError("heart", "no file or folder given")
    for path in items:
        if not path.exists():
            raise CardioInputError(path, "not found")
    if len(items) > 2:
        raise CardioInputError(
            items[0].parent,
            f"{len(items)} items given; open one heart (a file, an ED/ES pair "
            "or a subject folder), or a whole cohort with File > Open cohort folder",
        )
    if len(items) == 2:
        return _read_pair(*items)
    path = items[0]
    if path.is_dir():
        return _read_folder(path)
    if not is_nifti_path(path):
        raise CardioInputError(path, "not a NIfTI file (.nii or .nii.gz) nor a subject folder")
    if (path.parent / INFO_CFG).is_file() and _ACDC_FRAME.match(nifti_stem(path)):
        return read_acdc_subject(path.parent, images=_acdc_images(path.parent))
    partner = _phase_partner(path)
    if partner is not None:
        return _read_pair(path, partner)
    return _read_single(path)


def _read_folder(folder: Path) -> Subject:
    if (folder / INFO_CFG).is_file():
        return read_acdc_subject(folder, images=_acdc_images(folder))
    subjects = mnms_subject_paths(folder)
    if len(subjects) == 1:
        code, where = next(iter(subjects.items()))
        images = _mnms_images(where, code)
        return read_mnms_subject(where, code, images=images)
    if len(subjects) > 1:
        raise CardioInputError(folder, _many(len(subjects)))
    labels = sorted(
        p for p in folder.iterdir() if p.is_file() and is_nifti_path(p) and _looks_like_labels(p)
    )
    if not labels:
        raise CardioInputError(folder, "holds no label NIfTI (*_gt.nii.gz, *_ED/_ES.nii.gz)")
    if len(labels) <= 2:
        return read_heart(labels)
    raise CardioInputError(folder, _many(len(labels)))


def _many(n: int) -> str:
    return (
        f"holds {n} subjects or label files; open one heart here, or the whole folder with "
        "File > Open cohort folder"
    )


def _looks_like_labels(path: Path) -> bool:
    stem = nifti_stem(path).lower()
    return stem.endswith(("_gt", "_seg", "_label", "_labels")) or bool(_PHASE_TOKEN.search(stem))


def _acdc_images(folder: Path) -> bool:
    sid = folder.name
    return (
        any(folder.glob(f"{sid}_frame[0-9][0-9].nii.gz")) or (folder / f"{sid}_4d.nii.gz").is_file()
    )


def _mnms_images(folder: Path, code: str) -> bool:
    return (folder / f"{code}_sa.nii.gz").is_file() or all(
        (folder / f"{code}_sa_{p}.nii.gz").is_file() for p in PHASES
    )


def _phase_partner(path: Path) -> Path | None:
    """The other phase's file of ``x_ED[_gt].nii.gz`` / ``x_ES[_gt].nii.gz``, when present."""
    name = path.name
    matches = list(_PHASE_TOKEN.finditer(nifti_stem(name)))
    if not matches:
        return None
    match = matches[-1]  # the last ED/ES token of the stem names the phase
    other = "ES" if match.group(1).upper() == "ED" else "ED"
    if match.group(1).islower():
        other = other.lower()
    partner = path.with_name(name[: match.start()] + other + name[match.end() :])
    return partner if partner.is_file() else None


def image_beside(label_path: Path) -> Path | None:
    """The image file of a label file (``x_gt.nii.gz`` -> ``x.nii.gz``), when it exists."""
    stem = nifti_stem(label_path)
    if not stem.lower().endswith("_gt"):
        return None
    suffix = label_path.name[len(stem) :]
    candidate = label_path.with_name(stem[:-3] + suffix)
    return candidate if candidate.is_file() else None


def lv_is_label_three(labels: LabelVolume) -> bool:
    """True when the blood pool enclosed by myocardium is label 3 (ACDC values, not ours)."""
    data = labels.data

    def enclosed(value: int) -> float:
        mask = data == value
        if not mask.any():
            return 0.0
        ring = np.zeros_like(mask)
        for axis, shift in ((-1, 1), (-1, -1), (-2, 1), (-2, -1)):
            ring |= np.roll(mask, shift, axis=axis)
        ring &= ~mask
        return float(np.count_nonzero(data[ring] == Label.MYO)) / max(1, np.count_nonzero(ring))

    return enclosed(3) > enclosed(1) + 0.15


def _to_internal(labels: LabelVolume, notes: list[str]) -> LabelVolume:
    if not lv_is_label_three(labels):
        return labels
    notes.append(f"{labels.name}: label 3 is enclosed by myocardium, read as ACDC values")
    return labels.with_data(remap(labels.data, ACDC_TO_INTERNAL))


def _lv_voxels(labels: LabelVolume) -> int:
    return int(np.count_nonzero(labels.data == Label.LV))


def _read_pair(first: Path, second: Path) -> Subject:
    for path in (first, second):
        if path.is_dir():
            raise CardioInputError(path, "an ED/ES pair must be two label files, not a folder")
    notes: list[str] = []
    vols = [_to_internal(read_label_volume(p, ndim=3), notes) for p in (first, second)]
    check_same_grid(nifti_stem(first), vols)
    named_es = [bool(_ES_NAME.search(nifti_stem(p))) for p in (first, second)]
    named_ed = [bool(_ED_NAME.search(nifti_stem(p))) for p in (first, second)]
    if named_es == [False, True] or named_ed == [True, False]:
        order = (0, 1)
    elif named_es == [True, False] or named_ed == [False, True]:
        order = (1, 0)
    else:  # names say nothing: ED is the larger LV cavity
        order = (0, 1) if _lv_voxels(vols[0]) >= _lv_voxels(vols[1]) else (1, 0)
        notes.append("ED and ES told apart by LV cavity size")
    paths = (first, second)
    labels = {t: vols[i] for t, i in enumerate(order)}
    images = _images_beside([paths[i] for i in order], labels)
    sid = _subject_id(paths[order[0]])
    return _subject(sid, labels, images, 0, 1, paths[order[0]], notes)


def _read_single(path: Path) -> Subject:
    notes: list[str] = []
    vol = _to_internal(read_label_volume(path), notes)
    sid = _subject_id(path)
    if not vol.is_4d:
        images = _images_beside([path], {0: vol})
        notes.append("one 3D frame: read as ED; ES is estimated")
        return _subject(sid, {0: vol}, images, 0, None, path, notes)
    frames = split_frames(vol)
    lv = {t: _lv_voxels(v) for t, v in frames.items() if _lv_voxels(v) > 0}
    if not lv:
        raise CardioInputError(path, "no frame holds LV blood pool (label 1 or 3)")
    ed, es = max(lv, key=lv.__getitem__), min(lv, key=lv.__getitem__)
    notes.append(f"3D+t labels: ED frame {ed}, ES frame {es} (largest and smallest LV)")
    labels = {ed: frames[ed]} if ed == es else {ed: frames[ed], es: frames[es]}
    subject = _subject(sid, labels, {}, ed, None if ed == es else es, path, notes)
    subject.n_frames = vol.n_frames
    return subject


def _images_beside(paths: Sequence[Path], labels: dict[int, LabelVolume]) -> dict[int, ImageVolume]:
    """Images of the labelled frames where every one lies beside its labels on the same grid."""
    found = [image_beside(p) for p in paths]
    if not all(found):
        return {}
    try:
        images = {t: read_image_volume(p, ndim=3) for t, p in zip(labels, found, strict=True)}
        check_same_grid("image", [*labels.values(), *images.values()])
    except CardioInputError:
        return {}  # an unreadable or misaligned image: the labels alone still make the heart
    return images


def _subject_id(path: Path) -> str:
    stem = nifti_stem(path)
    stem = re.sub(r"_gt$", "", stem, flags=re.IGNORECASE)
    stem = _PHASE_TOKEN.sub("", stem).rstrip("_-. ")
    stem = re.sub(r"_sa$", "", stem)
    return stem or nifti_stem(path)


def _subject(
    sid: str,
    labels: dict[int, LabelVolume],
    images: dict[int, ImageVolume],
    ed: int,
    es: int | None,
    source: Path,
    notes: list[str],
) -> Subject:
    return Subject(
        subject_id=sid,
        group=None,
        ed_frame=ed,
        es_frame=es,
        n_frames=len(labels),
        labels=labels,
        images=images,
        source=source,
        info={"layout": "user", "notes": list(notes)},
    )
