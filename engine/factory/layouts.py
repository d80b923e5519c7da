"""Where a case's files go in each layout, and the files a finished dataset has beside them.

- ``flat``: ``<case>_<phase>_gt.nii.gz`` and ``<case>_<phase>.nii.gz`` (image) in one folder.
- ``nnunet``: nnU-Net v2 raw: ``imagesTr/<case>_<phase>_0000.nii.gz``,
  ``labelsTr/<case>_<phase>.nii.gz`` and ``dataset.json``.
- ``acdc``: a folder per case with ``Info.cfg`` (ED frame 1, ES frame 2) and
  ``<case>_frame01[_gt].nii.gz`` / ``<case>_frame02[_gt].nii.gz``.

(4D sequences: see ``sequence_files``.)

Every layout has ``labels.txt`` (ITK-SNAP table of the label values written) at its root.
"""

from __future__ import annotations

import json
from pathlib import Path

from cardio_explorer.engine.io.acdc import write_info_cfg
from cardio_explorer.engine.io.atomic import atomic_write_text
from cardio_explorer.engine.io.nifti import write_label_table
from cardio_explorer.engine.labels import INTERNAL_TO_ACDC, LABEL_TABLE
from cardio_explorer.engine.subject import BodySize, Conditions

LABEL_TABLE_FILE = "labels.txt"
_ACDC_FRAME = {"ED": 1, "ES": 2}
_NNUNET_NAMES = {0: "background", 1: "LV", 2: "MYO", 3: "RV"}  # in-memory values


def case_files(layout: str, case: str, phase: str, images: bool) -> dict[str, str]:
    """Paths (relative to the dataset folder) of one case's phase: 'label' and maybe 'image'."""
    if layout == "flat":
        files = {"label": f"{case}_{phase}_gt.nii.gz", "image": f"{case}_{phase}.nii.gz"}
    elif layout == "nnunet":
        files = {
            "label": f"labelsTr/{case}_{phase}.nii.gz",
            "image": f"imagesTr/{case}_{phase}_0000.nii.gz",
        }
    elif layout == "acdc":
        stem = f"{case}/{case}_frame{_ACDC_FRAME[phase]:02d}"
        files = {"label": f"{stem}_gt.nii.gz", "image": f"{stem}.nii.gz"}
    else:
        raise ValueError(layout)
    if not images:
        del files["image"]
    return files


def case_folders(layout: str, case: str) -> list[str]:
    """Folders a case's files need (relative to the dataset folder)."""
    if layout == "nnunet":
        return ["labelsTr", "imagesTr"]
    if layout == "acdc":
        return [case]
    return []


def write_case_info(
    folder: Path,
    case: str,
    group: str,
    conditions: Conditions | BodySize,
    *,
    ed: int = 1,
    es: int = 2,
    n_frames: int = 2,
) -> Path:
    """The case's Info.cfg (ACDC layout; 1-based frames): a morph's ED 1 and ES 2 of 2 frames,
    a sequence's own; group, height, weight and the other conditions when known (ACDC's own
    files have height and weight only)."""
    info = {"ED": ed, "ES": es, "Group": group, "NbFrame": n_frames, **_acdc_conditions(conditions)}
    return write_info_cfg(folder / case / "Info.cfg", info)


def _acdc_conditions(conditions: Conditions | BodySize) -> dict[str, object]:
    c = conditions
    known: dict[str, object] = {"Height": c.height, "Weight": c.weight}
    if isinstance(c, Conditions):
        known.update({"Age": c.age, "Sex": c.sex, "SBP": c.sbp})
    return known


def label_names(acdc_values: bool) -> dict[str, int]:
    """Structure name -> value on disk (nnU-Net's dataset.json ``labels``)."""
    names = {}
    for entry in LABEL_TABLE.entries:
        value = INTERNAL_TO_ACDC[entry.value] if acdc_values else entry.value
        names[_NNUNET_NAMES[entry.value]] = value
    return dict(sorted(names.items(), key=lambda item: item[1]))


def nnunet_training_count(folder: Path) -> int:
    """Label files in ``labelsTr`` (temporary '.NAME' files of a write in progress left out)."""
    labels = folder / "labelsTr"
    if not labels.is_dir():
        return 0
    return sum(1 for p in labels.glob("*.nii.gz") if not p.name.startswith("."))


def write_nnunet_json(folder: Path, acdc_values: bool, what: str = "short-axis morphs") -> Path:
    """nnU-Net v2 dataset.json: one cine MRI channel, the label values and numTraining, counted
    from the label files on disk (right for a whole dataset, a shard, or merged shards)."""
    info = {
        "channel_names": {"0": "cineMRI"},
        "labels": label_names(acdc_values),
        "numTraining": nnunet_training_count(folder),
        "file_ending": ".nii.gz",
        "name": f"cardio-explorer synthetic {what}",
        "description": "written by cardio-explorer synthesize; see manifest.csv",
    }
    return atomic_write_text(folder / "dataset.json", json.dumps(info, indent=2) + "\n")


def write_root_files(folder: Path, acdc_values: bool) -> Path:
    """The label table at the dataset's root, written before any case."""
    return write_label_table(folder / LABEL_TABLE_FILE, acdc_labels=acdc_values)
