"""``cardio-explorer evaluate label-vae``: reconstruction, morph phenotypes and 3D consistency."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from cardio_explorer.app.commands._checkpoints import label_vae_checkpoint
from cardio_explorer.app.commands._reports import (
    add_input_arguments,
    add_real_figures,
    add_run_arguments,
    check_report_out,
    exit_status,
    fmt,
    markdown_head,
    targets_met,
    use_threads,
    write_report,
)
from cardio_explorer.engine.device import choose_device, current_precision, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.cohort import read_cohort
from cardio_explorer.engine.io.split import read_split
from cardio_explorer.engine.label_vae.atlas import LatentAtlas, atlas_from_extra
from cardio_explorer.engine.label_vae.evaluation import (
    REPORTED_PHENOTYPES,
    EvaluationSettings,
    evaluate_label_vae,
)
from cardio_explorer.engine.label_vae.network import load_label_vae
from cardio_explorer.engine.label_vae.real import evaluate_real
from cardio_explorer.engine.limits import MAX_SEEDS, MAX_STEPS, MAX_SUBJECTS, check_count
from cardio_explorer.engine.preprocess import (
    DEFAULT_SPACING_MM,
    frame_of_checkpoint,
    preprocess_subject,
)
from cardio_explorer.engine.subject import Subject

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate label-vae``."""
    parser = subparsers.add_parser(
        "label-vae",
        help="label VAE: reconstruction Dice, NOR -> pathology phenotypes, 3D consistency",
        description="Evaluate a label VAE checkpoint and its latent atlas on held-out subjects; "
        "writes report.json and report.md.",
    )
    add_input_arguments(
        parser, "label VAE", "held-out cohort folder (optional with --real)", data_required=False
    )
    parser.add_argument(
        "--real",
        type=Path,
        default=None,
        help="folder of real labelled hearts in any layout the readers know (ACDC, M&Ms, "
        "generic): reconstruction Dice and atlas distance under real.* in the report",
    )
    parser.add_argument(
        "--split",
        type=Path,
        default=None,
        help="split file of subject ids (e.g. docs/acdc_split.json): read only its 'held_out' "
        "ids from --data and --real",
    )
    parser.add_argument("--seeds", type=int, default=20, help="samples per target group")
    parser.add_argument("--alpha-steps", type=int, default=11, help="alpha values in [0, 1]")
    parser.add_argument("--limit", type=int, default=None, help="use the first N subjects only")
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write report.json and report.md; 0 (or 1 with --strict and a missed target)."""
    check_report_out(args)
    use_threads(args)
    check_count("--seeds", args.seeds, 1, MAX_SEEDS)
    check_count("--alpha-steps", args.alpha_steps, 2, MAX_STEPS)
    if args.limit is not None:  # -1 would silently drop the last subject
        check_count("--limit", args.limit, 1, MAX_SUBJECTS)
    if args.data is None and args.real is None:
        raise CardioInputError("--data", "give a held-out cohort folder, --real DIR, or both")
    for flag, folder in (("--data", args.data), ("--real", args.real)):
        if folder is not None and not folder.is_dir():
            raise CardioInputError(flag, f"{folder} is not a folder")
    path = label_vae_checkpoint(args.checkpoint)
    device = choose_device(args.device)
    start = time.perf_counter()
    model, checkpoint = load_label_vae(path, device)
    atlas = atlas_from_extra(checkpoint.extra, path)
    size = model.config.size
    spacing = checkpoint.extra.get("grid", {}).get("spacing_mm") or _atlas_inplane_spacing(atlas)
    frame = frame_of_checkpoint(checkpoint.extra)  # hearts go where the model learned them
    report: dict[str, Any] = {}
    if args.data is not None:
        subjects = _read(args.data, args, spacing, size, frame)
        settings = EvaluationSettings(args.seeds, args.alpha_steps, str(device))
        report = evaluate_label_vae(model, atlas, subjects, settings, progress=not args.no_progress)
    if args.real is not None:
        real_subjects = _read(args.real, args, spacing, size, frame)
        fast = model.for_inference() if hasattr(model, "for_inference") else model
        real = evaluate_real(fast, atlas, real_subjects, device)
        add_real_figures(report, real)
    report = {
        "checkpoint": {
            "path": str(path),
            "sha256": checkpoint.sha256,
            "config": model.config.name,
            "nz": model.config.nz,
            "frame": frame,
        },
        "data": None if args.data is None else str(args.data),
        "real_data": None if args.real is None else str(args.real),
        "split": None if args.split is None else f"{args.split} (held_out)",
        "device": describe(device),
        "precision": current_precision(device),
        "elapsed_s": round(time.perf_counter() - start, 1),
        **report,
    }
    markdown = write_report(args.out, report, render_markdown)
    print(f"label VAE evaluation: {targets_met(report)}; wrote {args.out} and {markdown}")
    return exit_status(report, args.strict)


def _read(
    folder: Path, args: argparse.Namespace, spacing: float, size: int, frame: str
) -> list[Subject]:
    """ED/ES subjects of a folder (any known layout), first --limit, in the checkpoint's frame."""
    ids = None if args.split is None else read_split(args.split, "held_out")
    subjects = read_cohort(folder, frames="ed_es", subject_ids=ids, progress=not args.no_progress)
    if args.limit is not None:
        subjects = subjects[: args.limit]
    if not subjects:
        raise CardioInputError(folder, "holds no subjects")
    return [preprocess_subject(s, spacing_mm=spacing, size=size, frame=frame) for s in subjects]


def _atlas_inplane_spacing(atlas: LatentAtlas) -> float:
    """In-plane spacing the atlas subjects were preprocessed to (1.5 mm when unknown)."""
    for ref in atlas.references.values():
        for geometry in ref.geometry.values():
            return round(float(np.linalg.norm(geometry.affine[:3, 0])), 4)
    return DEFAULT_SPACING_MM


def render_markdown(report: dict[str, Any]) -> str:
    """A short human-readable report of :func:`run`'s JSON."""
    summary = (
        f"Checkpoint `{report['checkpoint']['path']}` ({report['checkpoint']['config']}, "
        f"nz {report['checkpoint']['nz']}, {report['checkpoint'].get('frame', 'anatomical')} "
        f"frame), data `{report['data']}`, real "
        f"`{report.get('real_data')}`, {report['device']}, {report['precision']}; "
        f"{report['elapsed_s']} s."
    )
    if "settings" in report:
        summary += (
            f" {report['settings']['seeds']} seeds, {report['settings']['alpha_steps']} alpha "
            f"steps, sources: {report['settings']['morph_sources']}."
        )
    lines = markdown_head("Label VAE evaluation", summary, report["targets"])
    if "recon_dice" in report:
        lines += _cohort_markdown(report)
    if "real" in report:
        lines += _real_markdown(report["real"])
    return "\n".join(lines)


def _real_markdown(real: dict[str, Any]) -> list[str]:
    recon, distance = real["recon_dice"], real["atlas_distance"]
    nearest = ", ".join(f"{g} {n}" for g, n in sorted(distance["nearest_group_counts"].items()))
    return [
        "",
        f"## Real hearts ({real['n_subjects']} subjects, {recon['n_volumes']} volumes)",
        "",
        "| lv | myo | rv | mean | lowest volume | atlas distance (RMS z) |",
        "|---|---|---|---|---|---|",
        f"| {fmt(recon['lv'])} | {fmt(recon['myo'])} | {fmt(recon['rv'])} | "
        f"{fmt(recon['mean'])} | {fmt(recon['min_volume'])} | {fmt(distance['mean'], 2)} |",
        "",
        f"Nearest atlas group: {nearest or 'n/a'}.",
        "",
    ]


def _cohort_markdown(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    recon = report["recon_dice"]
    lines += [
        "",
        f"## Reconstruction Dice ({recon['n_volumes']} volumes)",
        "",
        "| lv | myo | rv | mean |",
        "|---|---|---|---|",
        f"| {fmt(recon['lv'])} | {fmt(recon['myo'])} | {fmt(recon['rv'])} | {fmt(recon['mean'])} |",
        "",
        "## NOR -> pathology (mean over seeds; alpha 0 -> 1)",
        "",
        "| group | phenotype | alpha 0 | alpha 0.5 | alpha 1 | Spearman |",
        "|---|---|---|---|---|---|",
    ]
    for group, m in report["morph"].items():
        mid = len(m["alphas"]) // 2
        for name in REPORTED_PHENOTYPES:
            curve = m["phenotypes"][name]
            lines.append(
                f"| {group} | {name} | {fmt(curve[0], 1)} | {fmt(curve[mid], 1)} | "
                f"{fmt(curve[-1], 1)} | {fmt(m['spearman'][name], 2)} |"
            )
    lines += [
        "",
        "Share of alpha = 1 endpoints meeting their group's rule: "
        + ", ".join(f"{g} {fmt(m['endpoint_rule_share'], 2)}" for g, m in report["morph"].items())
        + f"; all {fmt(report['endpoint_rule_share'], 2)}.",
    ]
    c = report["consistency"]
    lines += [
        "",
        "## Slice-to-slice irregularity (lower is smoother)",
        "",
        "| real | correlated | uncorrelated |",
        "|---|---|---|",
        f"| {fmt(c['real'])} | {fmt(c['correlated'])} | {fmt(c['uncorrelated'])} |",
        "",
        f"Real: held-out stacks as acquired. Synthetic: alpha = 1 endpoints, {c['sampling']}. "
        "At all 32 slices: correlated "
        f"{fmt(c['at_32_slices']['correlated'])}, uncorrelated "
        f"{fmt(c['at_32_slices']['uncorrelated'])}.",
        "",
    ]
    return lines
