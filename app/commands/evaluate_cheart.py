"""``cardio-explorer evaluate cheart``: completion, generation, phenotypes, effects, topology,
issue 19's targets; real hearts with ``--real``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cardio_explorer.app.commands._cheart_report import render_markdown
from cardio_explorer.app.commands._reports import (
    add_input_arguments,
    add_run_arguments,
    check_report_out,
    exit_status,
    targets_met,
    use_threads,
    write_report,
)
from cardio_explorer.engine.device import current_precision, describe


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate cheart``."""
    parser = subparsers.add_parser(
        "cheart",
        help="CHeart: completion and generation Dice/HD/ASSD vs PCA, phenotype distributions",
        description="Evaluate a CHeart checkpoint on held-out subjects of a dense cohort; "
        "writes report.json and report.md (as the paper's Tables I-IV).",
    )
    add_input_arguments(
        parser,
        "CHeart",
        "held-out cohort (all frames; optional with --real); repeatable, e.g. two seeds: each "
        "cohort is evaluated and reported on its own, and every one must meet every target",
        data_required=False,
        data_repeatable=True,
    )
    parser.add_argument(
        "--real",
        type=Path,
        action="append",
        default=None,
        help="folder of real ED/ES hearts (ACDC, M&Ms, generic layout; repeatable): complete "
        "each ED frame and compare the frame at the real ES phase with the real ES labels, "
        "under real.* in the report",
    )
    parser.add_argument(
        "--split",
        type=Path,
        default=None,
        help="split file of subject ids (e.g. docs/acdc_split.json): a --real folder holding "
        "any of its ids is read for its 'held_out' ids only",
    )
    parser.add_argument(
        "--baseline-data",
        type=Path,
        default=None,
        help="cohort to fit the PCA baseline on (e.g. the training cohort; "
        "default: 2-fold cross-fitting on --data)",
    )
    parser.add_argument("--samples", type=int, default=20, help="generated sequences per subject")
    parser.add_argument("--limit", type=int, default=None, help="use the first N subjects only")
    parser.add_argument(
        "--generation-surface-every",
        type=int,
        default=4,
        help="HD/ASSD of generated sequences on every k-th frame (speed)",
    )
    parser.add_argument(
        "--components", type=int, default=None, help="PCA baseline components (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="complete and generate without scaling each heart's motion to the ejection "
        "fraction its motion code says (models with a motion code; engine/cheart/calibration.py)",
    )
    add_run_arguments(parser, device_default="cpu")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the JSON and Markdown reports; 0 (1 with --strict and a miss)."""
    check_report_out(args)
    use_threads(args)
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.cheart.data import load_sequences
    from cardio_explorer.engine.cheart.evaluation import EvaluationSettings, evaluate_cheart
    from cardio_explorer.engine.cheart.model import load_model
    from cardio_explorer.engine.cheart.targets import several_cohorts_targets
    from cardio_explorer.engine.errors import CardioInputError
    from cardio_explorer.engine.io.cohort import acdc_subject_folders
    from cardio_explorer.engine.io.split import read_split

    if args.limit is not None and args.limit < 1:
        raise CardioInputError("--limit", f"must be at least 1, got {args.limit}")
    if args.data is None and not args.real:
        raise CardioInputError("--data", "give a held-out cohort folder, --real DIR, or both")
    cohorts = args.data or []
    for flag, folder in (
        *(("--data", f) for f in cohorts),
        *(("--real", f) for f in args.real or []),
    ):
        if not folder.is_dir():
            raise CardioInputError(flag, f"{folder} is not a folder")
    held_out = None if args.split is None else set(read_split(args.split, "held_out"))
    settings = EvaluationSettings(
        n_generated=args.samples,
        generation_surface_every=args.generation_surface_every,
        baseline_components=args.components,
        seed=args.seed,
        calibrate=not args.no_calibration,
    )
    start = time.perf_counter()
    model = load_model(args.checkpoint, args.device)
    config = model.config
    progress = not args.no_progress

    def read(folder: Path, limit: int | None = None) -> Any:
        ids = None
        if limit is not None:
            ids = sorted(acdc_subject_folders(folder))[:limit] or None
        sequences = load_sequences(
            folder, config.grid, config.spacing, config.n_frames, subject_ids=ids, progress=progress
        )
        if limit is not None:
            sequences = sequences.subset(range(min(limit, len(sequences))))
        return sequences

    report: dict[str, Any] = {}
    baseline = read(args.baseline_data) if cohorts and args.baseline_data else None
    per_cohort = {}
    for name, folder in zip(_cohort_names(cohorts), cohorts, strict=True):
        test = read(folder, args.limit)
        per_cohort[name] = {
            "data": str(folder),
            **evaluate_cheart(model, test, baseline, settings, progress=progress),
        }
    if len(per_cohort) == 1:
        report = next(iter(per_cohort.values()))
        del report["data"]
    elif per_cohort:
        report = {"cohorts": per_cohort, "targets": several_cohorts_targets(per_cohort)}
        report["passed"] = all(t["pass"] for t in report["targets"].values())
    if args.real:
        from cardio_explorer.engine.cheart.real import evaluate_real

        sources = {_source_name(f): _read_real(f, held_out, args.limit) for f in args.real}
        real = evaluate_real(model, sources, progress=progress, calibrate=settings.calibrate)
        report["real"] = real
        report["targets"] = {**report.get("targets", {}), **real["targets"]}
        report["passed"] = all(t["pass"] for t in report["targets"].values())
    report = {
        "checkpoint": {
            "path": str(model.path),
            "sha256": model.sha256,
            "grid": list(config.grid),
            "spacing_mm": list(config.spacing),
            "n_frames": config.n_frames,
            "z_dim": config.z_dim,
            "trained_on": {
                k: model.training.get(k)
                for k in ("data", "n_train", "n_val", "best_epoch", "best_val_dice")
            },
        },
        "data": [str(f) for f in cohorts],
        "real_data": [str(f) for f in args.real or []],
        "split": None if args.split is None else f"{args.split} (held_out)",
        "baseline_data": str(args.baseline_data) if args.baseline_data else None,
        "calibrated": settings.calibrate and model.config.motion_code,
        "device": describe(model.device),
        "precision": current_precision(model.device),
        "elapsed_s": round(time.perf_counter() - start, 1),
        **report,
    }
    markdown = write_report(args.out, report, render_markdown)
    print(f"CHeart evaluation: {targets_met(report)}; wrote {args.out} and {markdown}")
    return exit_status(report, args.strict)


def _cohort_names(folders: list[Path]) -> list[str]:
    """A distinct report key per ``--data`` folder: its name, numbered where names repeat."""
    names: list[str] = []
    for folder in folders:
        base = folder.name or folder.resolve().name or str(folder)
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def _source_name(folder: Path) -> str:
    """Short name of a real source for report keys: the folder name."""
    return folder.resolve().name or str(folder)


def _read_real(folder: Path, held_out: set[str] | None, limit: int | None) -> list[Any]:
    """ED/ES subjects of a real folder: the split's held-out ids where the folder has any."""
    from cardio_explorer.engine.errors import CardioInputError
    from cardio_explorer.engine.io.cohort import read_cohort

    subjects = read_cohort(folder, frames="ed_es")
    if held_out is not None and any(s.subject_id in held_out for s in subjects):
        subjects = [s for s in subjects if s.subject_id in held_out]
    subjects = subjects[:limit] if limit is not None else subjects
    if not subjects:
        raise CardioInputError(folder, "holds no subjects")
    return subjects
