"""``cardio-explorer train spade``: train the SPADE label-to-image generator on a cohort folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from cardio_explorer.app.commands._precision import add_no_amp_alias
from cardio_explorer.app.commands._ranks import say
from cardio_explorer.app.commands._training import (
    add_common_training_arguments,
    check_training_outputs,
    command_line,
)
from cardio_explorer.engine.device import current_precision, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.cohort import read_cohort
from cardio_explorer.engine.io.split import read_split
from cardio_explorer.engine.nn import distributed
from cardio_explorer.engine.nn.checkpoint import read_checkpoint_header
from cardio_explorer.engine.nn.slices import split_subjects
from cardio_explorer.engine.nn.training import training_device
from cardio_explorer.engine.preprocess import DEFAULT_SPACING_MM
from cardio_explorer.engine.spade.config import CONFIGS, SpadeConfig, resolve_config
from cardio_explorer.engine.spade.data import collect_image_label_slices, prepare_subjects
from cardio_explorer.engine.spade.training import TrainSettings, train_spade, training_state_path

DEFAULTS = TrainSettings()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train spade``."""
    parser = subparsers.add_parser(
        "spade",
        help="SPADE label-to-image generator (MR-like images from labels)",
        description="Train the SPADE generator, style encoder and discriminator on the "
        "image/label pairs (ED and ES) of a cohort folder with images (the synthetic cohort, "
        "ACDC or M&Ms). Writes OUT (style encoder + generator: what inference and the bundle "
        "need) and OUT's .state.safetensors (all networks and optimizers, for --resume).",
    )
    parser.add_argument("--data", type=Path, required=True, help="cohort folder with images")
    parser.add_argument(
        "--config",
        default=None,
        help=f"{sorted(CONFIGS)} or a JSON file of SpadeConfig keys (optionally "
        '"base": "paper"; missing keys take the base values); default lean, or the resumed '
        "run's config",
    )
    add_common_training_arguments(
        parser,
        epochs=DEFAULTS.epochs,
        batch_size=DEFAULTS.batch_size,
        seed=DEFAULTS.seed,
        out=Path("spade.safetensors"),
    )
    parser.add_argument("--lr-g", type=float, default=DEFAULTS.lr_g, help="generator Adam lr")
    parser.add_argument("--lr-d", type=float, default=DEFAULTS.lr_d, help="discriminator lr")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="subjects held out of training (recorded, so `evaluate spade` tests on them)",
    )
    parser.add_argument("--max-subjects", type=int, default=None, help="use the first N only")
    parser.add_argument(
        "--split",
        type=Path,
        default=None,
        help="split file of subject ids (e.g. docs/acdc_split.json): train on its 'train' ids "
        "(its 'held_out' ids stay unseen, for `evaluate spade --split`)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=DEFAULTS.checkpoint_every,
        help="write both files every N epochs (0: only at the end)",
    )
    parser.add_argument("--spacing-mm", type=float, default=DEFAULT_SPACING_MM)
    add_no_amp_alias(parser)
    parser.set_defaults(func=run)


def spade_command_line(args: argparse.Namespace) -> str:
    """The full command with every training option spelled out (reproduces the run)."""
    options = [
        ("--config", args.config or "lean"),
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
        ("--lr-g", args.lr_g),
        ("--lr-d", args.lr_d),
        ("--seed", args.seed),
        ("--device", args.device),
        ("--out", args.out),
        ("--val-fraction", args.val_fraction),
        ("--max-subjects", args.max_subjects),
        ("--split", args.split),
        ("--checkpoint-every", args.checkpoint_every),
        ("--spacing-mm", args.spacing_mm),
    ]
    return command_line("spade", args, options)


def _config(args: argparse.Namespace) -> SpadeConfig:
    if args.config is not None:
        return resolve_config(args.config)
    if args.resume is not None:
        return SpadeConfig.from_json(read_checkpoint_header(args.resume)["config"])
    return resolve_config("lean")


def _print_epoch(record: dict[str, Any]) -> None:
    val = f", val L1 {record['val_l1']:.3f}" if record.get("val_l1") is not None else ""
    print(
        f"epoch {record['epoch']}: D {record['d']:.3f}, G {record['g_gan']:.3f}, "
        f"FM {record['feature_matching']:.3f}, rec {record['reconstruction']:.3f}, "
        f"KL {record['kl']:.2f}{val}; {record['slices_per_s']:.1f} slices/s",
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    """Read and preprocess the cohort, split it, train, write the model and its state."""
    check_training_outputs(args)
    if args.spacing_mm <= 0:
        raise CardioInputError("--spacing-mm", f"must be positive, got {args.spacing_mm}")
    if args.resume is not None and not args.resume.is_file():
        raise CardioInputError("--resume", f"{args.resume} not found")
    config = _config(args)
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    device = training_device(args.device, args.threads)
    ids = None if args.split is None else read_split(args.split, "train")
    subjects = read_cohort(
        args.data,
        frames="ed_es",
        images=True,
        subject_ids=ids,
        progress=not args.no_progress,
    )
    if args.max_subjects is not None:
        if args.max_subjects < 2:
            raise CardioInputError("--max-subjects", f"must be >= 2, got {args.max_subjects}")
        subjects = subjects[: args.max_subjects]
    split = split_subjects(subjects, args.val_fraction, args.seed)
    train = prepare_subjects(split.train, config.image_size, args.spacing_mm)
    val = prepare_subjects(split.val, config.image_size, args.spacing_mm)
    train_slices = collect_image_label_slices(train, config.image_size)
    val_slices = collect_image_label_slices(val, config.image_size) if val else None
    say(  # rank 0 alone under torchrun
        f"SPADE ({args.config or 'lean'}): "
        f"{len(train)} training subjects ({len(train_slices)} slices), {len(val)} held out; "
        f"{describe(device)}"
    )
    extra = {
        "train_subjects": [s.subject_id for s in split.train],
        "held_out_subjects": [s.subject_id for s in split.val],
        "spacing_mm": args.spacing_mm,
        "data": str(args.data.resolve()),
        "command": spade_command_line(args),
        "split": None if args.split is None else {"file": str(args.split), "part": "train"},
        "device": describe(device),
        "processes": distributed.world_size(),
        "precision": current_precision(device),
        "torch": torch.__version__,
    }
    result = train_spade(
        train_slices,
        config,
        settings,
        device,
        args.out,
        val=val_slices,
        resume=args.resume,
        extra=extra,
        progress=not args.no_progress,
        on_epoch=_print_epoch,
    )
    if distributed.is_main():  # under torchrun rank 0 reports what it wrote
        print(f"wrote {args.out} (state: {training_state_path(args.out)}); {result.epochs} epochs")
    return 0
