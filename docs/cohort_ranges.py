"""Per-group range of LV mass, max ED wall, LVEF and RV angle of ACDC-layout folders.

Usage: python docs/cohort_ranges.py FOLDER [FOLDER ...]  (real ACDC or a `cardio-explorer
cohort` output). For each folder and group: min / 5th / 95th percentile / max of LV mass (g),
maximum ED wall (mm), LVEF (%), the stored LV -> RV angle about the folder's mean (degrees), and,
after engine/frame.py's anatomical frame, the turn of the RV about the LV over each stack
(largest minus smallest per-slice angle, degrees). Prints one markdown table per figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cardio_explorer.engine.frame import lv_rv_angle
from cardio_explorer.engine.io.acdc import read_acdc_subject
from cardio_explorer.engine.metrics.orientation import about_mean_deg, rv_slice_angles
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.engine.preprocess import preprocess_subject, to_canonical_orientation

FIGURES = ("LV mass g", "max wall mm", "LVEF %", "RV angle deg", "RV turn deg")


def measure(folder: Path) -> list[dict]:
    """One row of figures per subject folder under ``folder``."""
    rows = []
    for path in sorted(p for p in folder.iterdir() if (p / "Info.cfg").is_file()):
        subject = read_acdc_subject(path)
        ed, es = subject.labels[subject.ed_frame], subject.labels[subject.es_frame]
        ph = measure_phenotypes(ed, es)
        stored = lv_rv_angle([to_canonical_orientation(v) for v in subject.labels.values()])
        framed = preprocess_subject(subject).labels[subject.ed_frame]
        turn = rv_slice_angles(framed)
        rows.append(
            {
                "group": subject.group,
                "LV mass g": ph.lvm_g,
                "max wall mm": ph.max_wall_mm,
                "LVEF %": ph.lvef,
                "RV angle deg": stored,
                # unwrap: per-slice angles straddle +-180 (the frame puts the RV along -x)
                "RV turn deg": float(np.ptp(np.degrees(np.unwrap(np.radians(turn)))))
                if turn.size
                else float("nan"),
            }
        )
    angles = about_mean_deg(r["RV angle deg"] for r in rows)
    for row, angle in zip(rows, angles, strict=True):
        row["RV angle deg"] = float(angle)
    return rows


def ranges(values: list[float]) -> str:
    """'min / p5 / p95 / max' of finite values."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return " / ".join(f"{q:.0f}" for q in (v.min(), *np.percentile(v, (5, 95)), v.max()))


def main(folders: list[str]) -> None:
    """Print the tables."""
    measured = {name: measure(Path(name)) for name in folders}
    groups = sorted({r["group"] for rows in measured.values() for r in rows})
    for figure in FIGURES:
        print(f"\n{figure}: min / 5th / 95th percentile / max\n")
        print("| group | " + " | ".join(measured) + " |")
        print("|---" * (len(measured) + 1) + "|")
        for group in [*groups, "all"]:
            cells = [
                ranges([r[figure] for r in rows if group in ("all", r["group"])])
                for rows in measured.values()
            ]
            print(f"| {group} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
