"""How well can anything predict the ES volumes from what completion is given (ED + conditions)?

Usage: python docs/completion_bound.py TRAIN_COHORT TEST_COHORT [TEST_COHORT ...] [--acdc DIR
--split docs/acdc_split.json]. Cohort folders are `cardio-explorer cohort` outputs (their
manifest.csv); a ridge regression (alpha by generalised cross-validation) from the ED measures
(LVEDV, RVEDV, LV mass, max wall) and the conditions (age, sex, height, weight, SBP), fitted on
TRAIN_COHORT, predicts each test cohort's LVESV, RVESV and LVEF; then the same with the
diagnostic group as well (which completion is not given). With --acdc, a 5-fold cross-validated
ridge from the real ED volumes (log LV, MYO, RV and their ratios) predicts the LVEF of the
split's training subjects (ACDC gives no age, sex or SBP). Prints markdown tables (README,
issue 19: the limit the ES-volume targets meet).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ED = ["lvedv_ml", "rvedv_ml", "lvm_g", "max_wall_mm", "age", "male", "height", "weight", "sbp"]
GROUPS = ["DCM", "HCM", "MINF", "ARV"]  # NOR is the reference
TARGETS = ["lvesv_ml", "rvesv_ml", "lvef"]


def _ridge():
    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))


def _cohort(folder: Path) -> pd.DataFrame:
    table = pd.read_csv(folder / "manifest.csv")
    table["male"] = (table["sex"] == "M").astype(float)
    for g in GROUPS:
        table[g] = (table["group"] == g).astype(float)
    return table


def cohort_table(train: Path, tests: list[Path]) -> list[str]:
    """Markdown rows: MAE of each target per test cohort, without and with the group."""
    fit = _cohort(train)
    lines = [
        "| predictors | "
        + " | ".join(f"{t} MAE ({', '.join(p.name for p in tests)})" for t in TARGETS)
        + " |"
    ]
    lines.append("|---" * (len(TARGETS) + 1) + "|")
    for name, columns in (("ED + conditions", ED), ("ED + conditions + group", ED + GROUPS)):
        cells = []
        for target in TARGETS:
            model = _ridge().fit(fit[columns].values, fit[target].values)
            errors = []
            for folder in tests:
                test = _cohort(folder)
                errors.append(np.abs(model.predict(test[columns].values) - test[target]).mean())
            cells.append(" / ".join(f"{e:.1f}" for e in errors))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def acdc_line(folder: Path, split: Path) -> str:
    """5-fold CV LVEF MAE of a ridge on the real ED volumes of the split's training subjects."""
    import json

    from cardio_explorer.engine.io.acdc import read_acdc_subject
    from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes

    ids = json.loads(split.read_text())["train"]
    rows, truth = [], []
    for subject_id in ids:
        subject = read_acdc_subject(folder / subject_id)
        ed = subject.labels[subject.ed_frame]
        voxels = [float((ed.data == k).sum()) * ed.voxel_volume_ml for k in (1, 2, 3)]
        lv, myo, rv = np.log(voxels)
        rows.append([lv, myo, rv, myo - lv, rv - lv])
        es = subject.labels[subject.es_frame]
        truth.append(measure_phenotypes(ed, es, wall=False).lvef)
    x, y = np.array(rows), np.array(truth)
    folds = KFold(5, shuffle=True, random_state=0)
    predicted = cross_val_predict(_ridge(), x, y, cv=folds)
    return (
        f"ACDC ({len(y)} training subjects): LVEF MAE {np.abs(predicted - y).mean():.1f} points "
        f"(predicting the mean: {np.abs(y - y.mean()).mean():.1f})"
    )


def main() -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path)
    parser.add_argument("tests", type=Path, nargs="+")
    parser.add_argument("--acdc", type=Path)
    parser.add_argument("--split", type=Path, default=Path("docs/acdc_split.json"))
    args = parser.parse_args()
    print("\n".join(cohort_table(args.train, args.tests)))
    if args.acdc is not None:
        print("\n" + acdc_line(args.acdc, args.split))


if __name__ == "__main__":
    main()
