"""M&Ms layout (labels 1 LV, 2 MYO, 3 RV, as in memory).

Two layouts are read:

- the challenge release: ``<code>/<code>_sa.nii.gz`` (4D image) and ``<code>/<code>_sa_gt.nii.gz``
  (4D labels, only ED and ES labelled), with an information CSV such as
  ``211230_M&Ms_Dataset_information_diagnosis_opendataset.csv`` (External code, VendorName,
  Vendor, Centre, ED, ES (0-based), Pathology, Age, Sex, Height, Weight) anywhere up to two
  folders above the subject folders;
- a flat folder of ``<code>_sa_ED_gt.nii.gz`` / ``<code>_sa_ES_gt.nii.gz`` (images
  ``<code>_sa_ED.nii.gz`` / ``<code>_sa_ES.nii.gz`` optional). Its subjects get ED frame 0 and
  ES frame 1 of two; the challenge's frame numbers, when the CSV gives them, stay in ``info``.

M&Ms gives no systolic blood pressure, so ``conditions`` is None; age, sex, height and weight
are kept in ``info``. Pathology codes outside our groups (e.g. HHD, AHS, IHD, LVNC) keep their
code in ``info['pathology']`` and get group None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.common import (
    Frames,
    check_same_grid,
    group_name,
    normalise_sex,
    number,
    pick,
    read_table,
    select_ids,
    split_frames,
    with_progress,
)
from cardio_explorer.engine.io.nifti import read_image_volume, read_label_volume
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.subject import PHASES, Subject
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

_CODE_COLUMNS = ("externalcode", "code", "subject", "subjectid", "id", "patient")
_FLAT_GT = re.compile(r"^(?P<code>.+)_sa_(?P<phase>ED|ES)_gt\.nii\.gz$", re.IGNORECASE)


@dataclass(frozen=True)
class MnmsInfo:
    """One row of the M&Ms information CSV; ED and ES are 0-based frame indices."""

    code: str
    ed: int | None = None
    es: int | None = None
    pathology: str | None = None
    vendor: str | None = None
    vendor_name: str | None = None
    centre: str | None = None
    age: float | None = None
    sex: str | None = None
    height: float | None = None
    weight: float | None = None

    def as_info(self) -> dict[str, Any]:
        """Non-missing fields for ``Subject.info``."""
        fields = {
            "pathology": self.pathology,
            "vendor": self.vendor,
            "vendor_name": self.vendor_name,
            "centre": self.centre,
            "age": self.age,
            "sex": self.sex,
            "height": self.height,
            "weight": self.weight,
        }
        return {k: v for k, v in fields.items() if v is not None}


def read_mnms_info(path: str | Path) -> dict[str, MnmsInfo]:
    """Rows of an M&Ms information CSV keyed by subject code (column names matched loosely)."""
    path = Path(path)
    rows = read_table(path)
    if rows and not any(c in rows[0] for c in _CODE_COLUMNS):
        raise CardioInputError(path, "no 'External code' (or code/subject/id) column")
    table: dict[str, MnmsInfo] = {}
    for number_, row in enumerate(rows, start=2):
        code = pick(row, *_CODE_COLUMNS)
        if code is None:
            continue
        where = f"{path} row {number_}"
        ed, es = number(pick(row, "ed"), "ED", where), number(pick(row, "es"), "ES", where)
        for name, value in (("ED", ed), ("ES", es)):
            if value is not None and (value < 0 or not float(value).is_integer()):
                raise CardioInputError(where, f"{name} must be a 0-based frame index, got {value}")
        table[code] = MnmsInfo(
            code=code,
            ed=None if ed is None else int(ed),
            es=None if es is None else int(es),
            pathology=pick(row, "pathology", "diagnosis", "group"),
            vendor=pick(row, "vendor"),
            vendor_name=pick(row, "vendorname"),
            centre=pick(row, "centre", "center"),
            age=number(pick(row, "age"), "Age", where),
            sex=normalise_sex(pick(row, "sex", "gender"), where),
            height=number(pick(row, "height"), "Height", where),
            weight=number(pick(row, "weight"), "Weight", where),
        )
    return table


def find_mnms_info(root: str | Path) -> Path | None:
    """The information CSV in ``root`` or up to two folders above it, if any."""
    folder = Path(root).resolve()
    for candidate in (folder, *list(folder.parents)[:2]):
        for csv_path in sorted(candidate.glob("*.csv")):
            try:
                header = csv_path.read_text(encoding="utf-8-sig").splitlines()[:1]
            except (OSError, UnicodeDecodeError):
                continue
            keys = re.sub(r"[^a-z0-9,;\t]", "", header[0].lower()) if header else ""
            if "externalcode" in keys or ("vendor" in keys and "pathology" in keys):
                return csv_path
    return None


def mnms_subject_paths(root: str | Path) -> dict[str, Path]:
    """Subject code -> folder (release layout) or file prefix folder (flat layout) under root."""
    root = Path(root)
    found: dict[str, Path] = {}
    for gt in root.rglob("*_sa_gt.nii.gz"):
        found.setdefault(gt.name[: -len("_sa_gt.nii.gz")], gt.parent)
    for gt in root.rglob("*_sa_E[DS]_gt.nii.gz"):
        match = _FLAT_GT.match(gt.name)
        if match:
            found.setdefault(match["code"], gt.parent)
    return dict(sorted(found.items()))


def is_mnms_folder(root: str | Path) -> bool:
    """True when root holds M&Ms label files in either layout."""
    return bool(mnms_subject_paths(root))


def read_mnms_subject(
    folder: str | Path,
    code: str | None = None,
    *,
    info: MnmsInfo | None = None,
    frames: Frames = "ed_es",
    images: bool = False,
) -> Subject:
    """Read one M&Ms subject from its folder (release layout) or a flat folder and its code."""
    folder = Path(folder)
    if frames not in ("ed_es", "all"):
        raise CardioInputError("frames", f"must be 'ed_es' or 'all', got {frames!r}")
    code = code or folder.name
    release_gt = folder / f"{code}_sa_gt.nii.gz"
    if release_gt.is_file():
        subject = _read_release(folder, code, release_gt, info, frames, images)
    else:
        subject = _read_flat(folder, code, info, images)
    vols = [*subject.labels.values(), *subject.images.values()]
    check_same_grid(code, vols)
    return subject


def _labelled_frames(labels: LabelVolume) -> list[int]:
    return [t for t in range(labels.n_frames) if np.any(labels.data[t])]


def _read_release(
    folder: Path,
    code: str,
    gt_path: Path,
    info: MnmsInfo | None,
    frames: Frames,
    images: bool,
) -> Subject:
    seq = read_label_volume(gt_path, ndim=4)
    n_frames = seq.n_frames
    if info is not None and info.ed is not None and info.es is not None:
        ed, es = info.ed, info.es
        for phase, t in (("ED", ed), ("ES", es)):
            if t >= n_frames:
                raise CardioInputError(
                    gt_path,
                    f"{phase} frame {t} (0-based, from the CSV) but the file has {n_frames} frames",
                )
            if not np.any(seq.data[t]):
                raise CardioInputError(gt_path, f"{phase} frame {t} (from the CSV) has no labels")
    else:
        ed, es = _guess_ed_es(seq, gt_path)
    labels = {t: seq.frame(t) for t in sorted({ed, es})}
    vols: dict[int, ImageVolume] = {}
    if images:
        image_path = folder / f"{code}_sa.nii.gz"
        movie = read_image_volume(image_path, ndim=4)
        if movie.n_frames != n_frames:
            raise CardioInputError(
                image_path, f"has {movie.n_frames} frames but {gt_path.name} has {n_frames}"
            )
        vols = split_frames(movie)
        if frames == "ed_es":
            vols = {t: vols[t] for t in sorted({ed, es})}
    return _subject(code, folder, info, ed, es, n_frames, labels, vols, layout="mnms")


def _guess_ed_es(seq: LabelVolume, path: Path) -> tuple[int, int]:
    """Without a CSV: the two labelled frames, ED the one with the larger LV cavity."""
    labelled = _labelled_frames(seq)
    if len(labelled) != 2:
        raise CardioInputError(
            path,
            f"{len(labelled)} labelled frames and no ED/ES in an information CSV; "
            "expected exactly 2 (ED and ES)",
        )
    a, b = labelled
    lv = [int(np.count_nonzero(seq.data[t] == Label.LV)) for t in labelled]
    return (a, b) if lv[0] >= lv[1] else (b, a)


def _read_flat(folder: Path, code: str, info: MnmsInfo | None, images: bool) -> Subject:
    labels, vols = {}, {}
    for t, phase in enumerate(PHASES):
        gt = folder / f"{code}_sa_{phase}_gt.nii.gz"
        if not gt.is_file():
            raise CardioInputError(gt, "label file not found")
        labels[t] = read_label_volume(gt, ndim=3)
        if images:
            vols[t] = read_image_volume(folder / f"{code}_sa_{phase}.nii.gz", ndim=3)
    subject = _subject(code, folder, info, 0, 1, 2, labels, vols, layout="mnms-flat")
    if info is not None and info.ed is not None:
        subject.info["source_ed_frame"] = info.ed
    if info is not None and info.es is not None:
        subject.info["source_es_frame"] = info.es
    return subject


def _subject(
    code: str,
    folder: Path,
    info: MnmsInfo | None,
    ed: int,
    es: int,
    n_frames: int,
    labels: dict[int, LabelVolume],
    vols: dict[int, ImageVolume],
    *,
    layout: str,
) -> Subject:
    extra: dict[str, Any] = {"layout": layout}
    if info is not None:
        extra.update(info.as_info())
    return Subject(
        subject_id=code,
        group=group_name(info.pathology) if info is not None else None,
        conditions=None,  # M&Ms has no SBP
        ed_frame=ed,
        es_frame=es,
        n_frames=n_frames,
        labels=labels,
        images=vols,
        source=folder,
        info=extra,
    )


def read_mnms_cohort(
    root: str | Path,
    *,
    frames: Frames = "ed_es",
    images: bool = False,
    subject_ids: list[str] | None = None,
    info_csv: str | Path | None = None,
    progress: bool = False,
) -> list[Subject]:
    """Every M&Ms subject under root, sorted by code."""
    root = Path(root)
    paths = mnms_subject_paths(root)
    if not paths:
        raise CardioInputError(root, "no M&Ms label files (<code>_sa_gt.nii.gz) found")
    csv_path = Path(info_csv) if info_csv is not None else find_mnms_info(root)
    table = read_mnms_info(csv_path) if csv_path is not None else {}
    codes = select_ids(root, list(paths), subject_ids)
    return [
        read_mnms_subject(paths[c], c, info=table.get(c), frames=frames, images=images)
        for c in with_progress(codes, progress, "M&Ms subjects")
    ]
