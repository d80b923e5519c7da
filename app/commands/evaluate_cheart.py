"""``cardio-explorer evaluate cheart``: completion, generation, phenotypes, trends."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cardio_explorer.app.commands._reports import (
    add_input_arguments,
    add_run_arguments,
    check_report_out,
    exit_status,
    fmt,
    markdown_head,
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
        parser, "CHeart", "held-out cohort (all frames; optional with --real)", data_required=False
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
    from cardio_explorer.engine.errors import CardioInputError
    from cardio_explorer.engine.io.cohort import acdc_subject_folders
    from cardio_explorer.engine.io.split import read_split

    if args.limit is not None and args.limit < 1:
        raise CardioInputError("--limit", f"must be at least 1, got {args.limit}")
    if args.data is None and not args.real:
        raise CardioInputError("--data", "give a held-out cohort folder, --real DIR, or both")
    for flag, folder in (("--data", args.data), *(("--real", f) for f in args.real or [])):
        if folder is not None and not folder.is_dir():
            raise CardioInputError(flag, f"{folder} is not a folder")
    held_out = None if args.split is None else set(read_split(args.split, "held_out"))
    settings = EvaluationSettings(
        n_generated=args.samples,
        generation_surface_every=args.generation_surface_every,
        baseline_components=args.components,
        seed=args.seed,
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
    if args.data is not None:
        test = read(args.data, args.limit)
        baseline = read(args.baseline_data) if args.baseline_data else None
        report = evaluate_cheart(model, test, baseline, settings, progress=progress)
    if args.real:
        from cardio_explorer.engine.cheart.real import evaluate_real

        sources = {_source_name(f): _read_real(f, held_out, args.limit) for f in args.real}
        real = evaluate_real(model, sources, progress=progress)
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
        "data": None if args.data is None else str(args.data),
        "real_data": [str(f) for f in args.real or []],
        "split": None if args.split is None else f"{args.split} (held_out)",
        "baseline_data": str(args.baseline_data) if args.baseline_data else None,
        "device": describe(model.device),
        "precision": current_precision(model.device),
        "elapsed_s": round(time.perf_counter() - start, 1),
        **report,
    }
    markdown = write_report(args.out, report, render_markdown)
    print(f"CHeart evaluation: {targets_met(report)}; wrote {args.out} and {markdown}")
    return exit_status(report, args.strict)


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


def _metric_rows(name: str, block: dict[str, Any]) -> list[str]:
    rows = []
    for metric, digits in (("dice", 3), ("hd_mm", 2), ("assd_mm", 2)):
        v = block[metric]
        rows.append(
            f"| {name} | {metric} | {fmt(v['lv'], digits)} | {fmt(v['myo'], digits)} "
            f"| {fmt(v['rv'], digits)} | {fmt(v['mean'], digits)} |"
        )
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    """A short human-readable version of the JSON report."""
    ck = report["checkpoint"]
    n = report["completion"]["n_subjects"] if "completion" in report else 0
    summary = (
        f"Checkpoint `{ck['path']}` (grid {ck['grid']} at {ck['spacing_mm']} mm, "
        f"{ck['n_frames']} frames), data `{report['data']}` ({n} subjects), real "
        f"{report.get('real_data') or 'none'}, {report['device']}, {report['precision']}; "
        f"{report['elapsed_s']} s."
    )
    lines = markdown_head("CHeart evaluation", summary, report["targets"])
    if "completion" in report:
        lines += _cohort_markdown(report)
    if "real" in report:
        lines += _real_markdown(report["real"])
    lines.append("")
    return "\n".join(lines)


def _real_markdown(real: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Real hearts: ED completed, frame at the real ES phase vs real ES",
        "",
        "| source | subjects | LVEF MAE (points) | LVESV MAE mL | Dice ES lv / myo / rv / mean "
        "| LVEF completed / real (mean) | LV exposed (max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in [
        *((k, v["completion"]) for k, v in real["sources"].items()),
        ("all", real["completion"]),
    ]:
        d = c["dice_es"]
        lines.append(
            f"| {name} | {c['n_subjects']} | {fmt(c['lvef_mae'], 1)} | {fmt(c['lvesv_mae_ml'], 1)} "
            f"| {fmt(d['lv'])} / {fmt(d['myo'])} / {fmt(d['rv'])} / {fmt(d['mean'])} "
            f"| {fmt(c['lvef_completed_mean'], 1)} / {fmt(c['lvef_real_mean'], 1)} "
            f"| {fmt(c['lv_exposed_fraction_max'], 4)} |"
        )
    return lines


def _cohort_markdown(report: dict[str, Any]) -> list[str]:
    comp, gen = report["completion"], report["generation"]
    lines = [
        "",
        "## Sequence completion from ED (all frames)",
        "",
        f"PCA baseline fitted on {comp['pca']['fitted_on']}.",
        "",
        "| method | metric | lv | myo | rv | mean |",
        "|---|---|---|---|---|---|",
        *_metric_rows("CHeart", comp["model"]),
        *_metric_rows("PCA", comp["pca"]),
        "",
        f"## Generation ({gen['samples_per_subject']} samples per subject's conditions)",
        "",
        f"z0 prior: {gen.get('prior', 'N(0, I)')}",
        "",
        "| samples | metric | lv | myo | rv | mean |",
        "|---|---|---|---|---|---|",
        *_metric_rows("mean", gen["mean"]),
        *_metric_rows("best", gen["best"]),
        "",
        "## Phenotypes: generated vs real",
        "",
        "| phenotype | completion mean abs diff | generation mean abs diff | KL | Wasserstein |"
        " generated mean | real mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, d in report["distributions"].items():
        lines.append(
            f"| {p} | {fmt(report['phenotypes']['completion'][p]['mean_abs_diff'], 1)} | "
            f"{fmt(report['phenotypes']['generation_mean_of_samples'][p]['mean_abs_diff'], 1)} "
            f"| {fmt(d['kl'])} | {fmt(d['wasserstein'], 1)} | {fmt(d['generated_mean'], 1)} "
            f"| {fmt(d['real_mean'], 1)} |"
        )
    lines += [
        "",
        "## Trends (least squares on age and sex)",
        "",
        "| phenotype | effect | real | generated | same sign |",
        "|---|---|---|---|---|",
    ]
    for p, t in report["trends"].items():
        for key, label in (("age_per_decade", "age"), ("male_minus_female", "sex")):
            lines.append(
                f"| {p} | {key} | {fmt(t['real'][key], 2)} | "
                f"{fmt(t['generated'][key], 2)} | {fmt(t['same_sign'][label])} |"
            )
    return lines
