"""How well can anything predict the ES volumes from what completion is given (ED + conditions)?

Usage: python docs/completion_bound.py TRAIN_COHORT TEST_COHORT [TEST_COHORT ...] [--acdc DIR
--split docs/acdc_split.json]. Cohort folders are `cardio-explorer cohort` outputs (their
manifest.csv); a ridge regression (alpha by generalised cross-validation) from the ED measures
(LVEDV, RVEDV, LV mass, max wall) and the conditions (age, sex, height, weight, SBP), fitted on
TRAIN_COHORT, predicts each test cohort's LVESV, RVESV and LVEF; then the same with the
diagnostic group as well (which completion is not given); then the floor of the cohort's own law:
the cohort draws each heart's LVEF and RVEF from its group and sex with a spread of their own,
independent of the ED anatomy (engine/cohort/physiology.py, `_draw`), so no predictor from the
ED frame beats the conditional median ESV/EDV ratio of the true group and sex times the true EDV
(fitted on TRAIN_COHORT). With --acdc, a 5-fold cross-validated
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
    lines.append(law_floor_row(fit, [_cohort(folder) for folder in tests]))
    return lines


def law_floor_row(fit: pd.DataFrame, tests: list[pd.DataFrame]) -> str:
    """Markdown row: MAE of the cohort law's oracle, EDV times the median ESV/EDV ratio of the
    heart's true group and sex (LVEF from the LV ratio)."""
    ratios = pd.DataFrame(
        {
            "lv": fit["lvesv_ml"] / fit["lvedv_ml"],
            "rv": fit["rvesv_ml"] / fit["rvedv_ml"],
            "group": fit["group"],
            "sex": fit["sex"],
        }
    )
    median = ratios.groupby(["group", "sex"])[["lv", "rv"]].median()
    errors: dict[str, list[float]] = {t: [] for t in TARGETS}
    arv_exact = []
    for test in tests:
        ratio = median.loc[list(zip(test["group"], test["sex"], strict=True))].to_numpy()
        predicted = {
            "lvesv_ml": test["lvedv_ml"].to_numpy() * ratio[:, 0],
            "rvesv_ml": test["rvedv_ml"].to_numpy() * ratio[:, 1],
            "lvef": 100.0 * (1.0 - ratio[:, 0]),
        }
        for target in TARGETS:
            errors[target].append(float(np.abs(predicted[target] - test[target]).mean()))
        # The ARV rule (RVEDVi high or RVEF low) ties RVEF to RVEDV, so there the median
        # ratio is not the floor: count those hearts as predicted exactly.
        rv_error = np.abs(predicted["rvesv_ml"] - test["rvesv_ml"]).to_numpy()
        arv_exact.append(float(np.where(test["group"] == "ARV", 0.0, rv_error).mean()))
    cells = [" / ".join(f"{e:.1f}" for e in errors[t]) for t in TARGETS]
    rv_cell = " / ".join(f"{e:.1f}" for e in arv_exact)
    return (
        "| the cohort law's floor: true EDV x median ESV/EDV of the true group and sex | "
        + " | ".join(cells)
        + f" |\n| the same, ARV hearts' RVESV counted as exact | - | {rv_cell} | - |"
    )


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
