"""``cardio-explorer evaluate spade``: label fidelity and intensities of synthesised images."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cardio_explorer import resources
from cardio_explorer.app.commands._checkpoints import resolve_checkpoint
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
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.nn.slices import split_subjects
from cardio_explorer.engine.preprocess import DEFAULT_SPACING_MM
from cardio_explorer.engine.spade.data import prepare_subjects
from cardio_explorer.engine.spade.fidelity import STYLES, FidelitySettings, evaluate_fidelity
from cardio_explorer.engine.spade.network import load_spade
from cardio_explorer.engine.spade.realism import evaluate_contrast
from cardio_explorer.engine.spade.segmenter import SegmenterSettings
from cardio_explorer.engine.subject import Subject

TRAIN_HINT = (
    "train one with `cardio-explorer train spade --data COHORT --out "
    "resources/spade.safetensors` (see the README)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate spade``."""
    parser = subparsers.add_parser(
        "spade",
        help="SPADE: label fidelity (segmenter Dice) and per-tissue intensities",
        description="Train a small U-Net on real image/label pairs, segment images synthesised "
        "from held-out labels, and report Dice against those labels (label fidelity) next to "
        "the same segmenter's Dice on the real held-out images, plus per-tissue intensity "
        "mean/std synthetic vs real. Held out: the subjects the checkpoint was not trained on. "
        "Writes report.json and report.md.",
    )
    add_input_arguments(
        parser, "SPADE", "cohort folder with images (optional with --real)", data_required=False
    )
    parser.add_argument(
        "--real",
        type=Path,
        default=None,
        help="folder of real hearts with images in any layout the readers know: tissue "
        "contrast of SPADE's images vs the real ones under real.contrast",
    )
    parser.add_argument(
        "--split",
        type=Path,
        default=None,
        help="split file of subject ids (e.g. docs/acdc_split.json): the judge trains on the "
        "'train' ids of --data, the 'held_out' ids of --data and --real are tested",
    )
    parser.add_argument(
        "--style",
        choices=STYLES,
        default="reference",
        help="style of synthetic images: each frame's own real image, or a random draw",
    )
    parser.add_argument(
        "--segmenter-steps",
        type=int,
        default=SegmenterSettings().steps,
        help="optimiser steps (16 slices each) to train the judge U-Net",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.3,
        help="share of subjects tested when none in --data was held out of SPADE training",
    )
    parser.add_argument("--max-test-subjects", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def split_for_evaluation(
    subjects: list[Subject], trained_ids: set[str], test_fraction: float, seed: int
) -> tuple[list[Subject], list[Subject]]:
    """(segmenter subjects, test subjects): test = never seen by SPADE training.

    When every subject is unseen (another folder), a seeded share of them is tested and the
    rest train the segmenter; when every subject was seen, there is nothing fair to test on.
    """
    unseen = [s for s in subjects if s.subject_id not in trained_ids]
    seen = [s for s in subjects if s.subject_id in trained_ids]
    if not unseen:
        raise CardioInputError(
            "--data",
            f"all {len(subjects)} subjects were used to train this checkpoint; evaluate on "
            "held-out subjects (train with --val-fraction > 0, or pass another cohort)",
        )
    if seen:
        return seen, unseen
    split = split_subjects(unseen, test_fraction, seed)
    if not split.train or not split.val:
        raise CardioInputError("--data", "needs at least 2 subjects (segmenter + test)")
    return split.train, split.val


def split_by_file(
    subjects: list[Subject], split: Path, trained_ids: set[str]
) -> tuple[list[Subject], list[Subject]]:
    """(judge subjects, test subjects) from a split file; held-out ids SPADE saw are refused."""
    train_ids, held_ids = set(read_split(split, "train")), set(read_split(split, "held_out"))
    seen = sorted(held_ids & trained_ids)
    if seen:
        raise CardioInputError(
            split, f"held-out ids {', '.join(seen[:5])} were used to train this checkpoint"
        )
    judge = [s for s in subjects if s.subject_id in train_ids]
    test = [s for s in subjects if s.subject_id in held_ids]
    if not judge or not test:
        raise CardioInputError(
            "--data",
            f"needs subjects of both parts of {split} (judge {len(judge)}, test {len(test)})",
        )
    return judge, test


def run(args: argparse.Namespace) -> int:
    """Evaluate, write report.json and report.md; 0 (or 1 with --strict and a missed target)."""
    check_report_out(args)
    use_threads(args)
    path = resolve_checkpoint(
        args.checkpoint, resources.bundled_checkpoint("spade"), "bundled SPADE model", TRAIN_HINT
    )
    if args.segmenter_steps < 1:
        raise CardioInputError("--segmenter-steps", f"must be >= 1, got {args.segmenter_steps}")
    if args.data is None and args.real is None:
        raise CardioInputError("--data", "give a cohort folder with images, --real DIR, or both")
    for flag, folder in (("--data", args.data), ("--real", args.real)):
        if folder is not None and not folder.is_dir():
            raise CardioInputError(flag, f"{folder} is not a folder")
    device = choose_device(args.device)
    start = time.perf_counter()
    checkpoint = load_checkpoint(path, "spade")
    model = load_spade(checkpoint, device)
    spacing = float(checkpoint.extra.get("spacing_mm", DEFAULT_SPACING_MM))
    size = model.config.image_size
    report: dict[str, Any] = {}
    if args.data is not None:
        report = _fidelity(args, model, checkpoint, device, spacing, size)
    if args.real is not None:
        ids = None if args.split is None else read_split(args.split, "held_out")
        subjects, skipped = _with_images(args.real, ids)
        real = evaluate_contrast(
            model, prepare_subjects(subjects, size, spacing), args.style, args.seed
        )
        real["skipped_without_images"] = skipped
        add_real_figures(report, real)
    report = {
        "checkpoint": {
            "path": str(path),
            "sha256": checkpoint.sha256,
            "image_size": size,
            "z_dim": model.config.z_dim,
        },
        "data": None if args.data is None else str(args.data),
        "real_data": None if args.real is None else str(args.real),
        "split": None if args.split is None else f"{args.split} (judge: train, test: held_out)",
        "device": describe(device),
        "precision": current_precision(device),
        **report,
        "elapsed_s": round(time.perf_counter() - start, 1),
    }
    markdown = write_report(args.out, report, render_markdown)
    shown = ""
    if "label_fidelity_dice" in report:
        shown = (
            f"label fidelity Dice {report['label_fidelity_dice']['mean']:.3f} "
            f"(real images {report['real_image_dice']['mean']:.3f}); "
        )
    print(f"SPADE evaluation: {shown}{targets_met(report)}; wrote {args.out} and {markdown}")
    return exit_status(report, args.strict)


def _with_images(folder: Path, only: list[str] | None = None) -> tuple[list[Subject], list[str]]:
    """The subjects of a folder (``only`` these ids) that have images (ED/ES), and the ids of
    those that have none."""
    ids = [s.subject_id for s in read_cohort(folder, frames="ed_es", subject_ids=only)]
    subjects, skipped = [], []
    for sid in ids:
        try:
            subjects += read_cohort(folder, frames="ed_es", images=True, subject_ids=[sid])
        except CardioInputError:
            skipped.append(sid)  # labels only (e.g. one of the M&Ms sample's subjects)
    subjects = [s for s in subjects if s.images]
    if not subjects:
        raise CardioInputError(folder, "holds no subject with images")
    return subjects, skipped


def _fidelity(
    args: argparse.Namespace, model: Any, checkpoint: Any, device: Any, spacing: float, size: int
) -> dict[str, Any]:
    """Label fidelity and intensities on the held-out subjects of --data."""
    subjects = read_cohort(args.data, frames="ed_es", images=True, progress=not args.no_progress)
    trained = set(checkpoint.extra.get("train_subjects", []))
    if args.split is not None:
        # ids are only comparable within one folder: the cohort reuses ACDC-style ids
        trained_on = checkpoint.extra.get("data")
        same = trained_on is None or Path(trained_on).resolve() == args.data.resolve()
        seg_subjects, test_subjects = split_by_file(
            subjects, args.split, trained if same else set()
        )
    else:
        seg_subjects, test_subjects = split_for_evaluation(
            subjects, trained, args.test_fraction, args.seed
        )
    if args.max_test_subjects is not None:
        test_subjects = test_subjects[: max(1, args.max_test_subjects)]
    settings = FidelitySettings(
        style=args.style,
        seed=args.seed,
        segmenter=SegmenterSettings(steps=args.segmenter_steps, seed=args.seed),
    )
    result = evaluate_fidelity(
        model,
        prepare_subjects(seg_subjects, size, spacing),
        prepare_subjects(test_subjects, size, spacing),
        settings,
        device,
        progress=not args.no_progress,
    )
    return {"test_subjects": [s.subject_id for s in test_subjects], **result.to_json()}


def render_markdown(report: dict[str, Any]) -> str:
    """A short human-readable report of :func:`run`'s JSON."""
    summary = (
        f"Checkpoint `{report['checkpoint']['path']}`, data `{report['data']}`, real "
        f"`{report.get('real_data')}`, {report['device']}, {report['precision']}; "
        f"{report['elapsed_s']} s."
    )
    if "counts" in report:
        c = report["counts"]
        summary += (
            f" Segmenter trained on {c['segmenter_subjects']} subjects "
            f"({c['segmenter_slices']} slices, {report['segmenter']['steps']} steps), tested on "
            f"{c['test_volumes']} volumes of {c['test_subjects']} held-out subjects; style "
            f"{report['settings']['style']}."
        )
    lines = markdown_head("SPADE evaluation", summary, report["targets"])
    if "counts" in report:
        lines += _fidelity_markdown(report)
    if "real" in report:
        real = report["real"]
        c = real["contrast"]
        lines += [
            "",
            f"## Contrast on real hearts ({real['n_volumes']} volumes, style {real['style']})",
            "",
            "| ratio | real | synthetic | relative error |",
            "|---|---|---|---|",
            *(
                f"| {name} | {fmt(c['real'][name])} | {fmt(c['synthetic'][name])} | "
                f"{fmt(c['relative_error'][name])} |"
                for name in c["real"]
            ),
            "",
        ]
    return "\n".join(lines)


def _fidelity_markdown(report: dict[str, Any]) -> list[str]:
    fid, real = report["label_fidelity_dice"], report["real_image_dice"]
    lines: list[str] = []
    lines += [
        "",
        "## Dice of the segmenter against the labels",
        "",
        "| images | lv | myo | rv | mean |",
        "|---|---|---|---|---|",
        f"| synthesised from the labels | {fmt(fid['lv'])} | {fmt(fid['myo'])} | "
        f"{fmt(fid['rv'])} | {fmt(fid['mean'])} |",
        f"| real | {fmt(real['lv'])} | {fmt(real['myo'])} | {fmt(real['rv'])} | "
        f"{fmt(real['mean'])} |",
        "",
        "## Intensity per tissue (scale (x + 1) / 2)",
        "",
        "| tissue | real mean | real std | synthetic mean | synthetic std | relative error |",
        "|---|---|---|---|---|---|",
    ]
    for tissue, t in report["intensity"].items():
        lines.append(
            f"| {tissue} | {fmt(t['real']['mean'])} | {fmt(t['real']['std'])} | "
            f"{fmt(t['synthetic']['mean'])} | {fmt(t['synthetic']['std'])} | "
            f"{fmt(t['relative_mean_error'])} |"
        )
    lines.append("")
    return lines
