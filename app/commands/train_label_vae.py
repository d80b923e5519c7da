"""``cardio-explorer train label-vae``: train the 2D label VAE on a cohort folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from cardio_explorer.app.commands._training import (
    add_common_training_arguments,
    check_training_outputs,
    command_line,
)
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.config import PRESETS, LabelVaeConfig
from cardio_explorer.engine.label_vae.training import (
    EpochRecord,
    TrainOptions,
    state_path_for,
    train_label_vae_on_subjects,
)
from cardio_explorer.engine.nn import distributed
from cardio_explorer.engine.nn.config_files import read_config
from cardio_explorer.engine.preprocess import DEFAULT_FRAME, FRAMES
from cardio_explorer.engine.subject import Subject

DEFAULTS = DEFAULT_OPTIONS = TrainOptions()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train label-vae``."""
    parser = subparsers.add_parser(
        "label-vae",
        help="2D label VAE (pathology synthesis)",
        description="Train the 2D beta-VAE on the ED/ES label slices of a cohort folder "
        "(synthetic, ACDC, M&Ms or generic). Writes OUT (model, config, training summary, "
        "latent atlas) and OUT's .state.safetensors (resumable training state).",
    )
    parser.add_argument("--data", type=Path, required=True, help="cohort folder")
    parser.add_argument(
        "--config",
        default=None,
        help=f"preset {sorted(PRESETS)} or a JSON file of LabelVaeConfig keys (missing keys "
        "take the lean values); default lean, or the resumed run's config",
    )
    add_common_training_arguments(
        parser,
        epochs=DEFAULTS.epochs,
        batch_size=DEFAULTS.batch_size,
        seed=DEFAULTS.seed,
        out=Path("label_vae.safetensors"),
    )
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr, help="Adam learning rate")
    parser.add_argument("--beta", type=float, default=None, help="KL weight (default: config's)")
    parser.add_argument(
        "--beta-warmup-epochs",
        type=float,
        default=DEFAULTS.beta_warmup_epochs,
        help="epochs over which the KL weight ramps up from 0",
    )
    parser.add_argument(
        "--lr-decay-epochs",
        type=int,
        default=None,
        help="linear learning-rate decay over the last N epochs (default: 1/4)",
    )
    parser.add_argument("--val-fraction", type=float, default=DEFAULTS.val_fraction)
    parser.add_argument(
        "--max-subjects",
        type=int,
        default=None,
        help="use at most N subjects (spread over the groups)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=DEFAULTS.checkpoint_every,
        help="write the resumable state every N epochs (0: only at the end)",
    )
    parser.add_argument(
        "--validate-every",
        type=int,
        default=DEFAULTS.validate_every,
        help="validation Dice every N epochs (0: only at the end)",
    )
    parser.add_argument(
        "--split",
        type=Path,
        default=None,
        help="split file of subject ids (e.g. docs/acdc_split.json): train on its 'train' ids",
    )
    parser.add_argument("--spacing-mm", type=float, default=1.5, help="in-plane spacing")
    parser.add_argument(
        "--frame",
        choices=FRAMES,
        default=DEFAULT_FRAME,
        help="hearts in the anatomical frame (engine/frame.py) or the header's (canonical "
        "orientation only: no rotation, mirror or slice flip); recorded in the model file, "
        "which evaluation and the app then use",
    )
    parser.add_argument("--no-augment", action="store_true", help="no random rotation/shift")
    parser.add_argument(
        "--max-rotation-deg",
        type=float,
        default=DEFAULT_OPTIONS.max_rotation_deg,
        help="largest random in-plane rotation, 0-180 (180: any angle)",
    )
    parser.add_argument(
        "--max-shift-px", type=float, default=DEFAULT_OPTIONS.max_shift_px, help="random shift"
    )
    parser.add_argument(
        "--flip", action="store_true", help="random mirrors in x and in y (each p = 1/2)"
    )
    parser.add_argument("--no-atlas", action="store_true", help="skip the latent atlas")
    parser.set_defaults(func=run)


def resolve_config(value: str | None) -> LabelVaeConfig | None:
    """A preset name or a JSON file -> config; None stays None (lean or the resumed run's)."""
    if value is None:
        return None
    return read_config(
        value,
        PRESETS,
        LabelVaeConfig.to_dict,
        lambda data, source: LabelVaeConfig.from_dict(data, source),
    )


def pick_subjects(subjects: list[Subject], n: int) -> list[Subject]:
    """At most n subjects, taken round-robin over the groups (each group in id order)."""
    if n < 1:
        raise CardioInputError("--max-subjects", f"must be >= 1, got {n}")
    by_group: dict[str, list[Subject]] = {}
    for subject in sorted(subjects, key=lambda s: s.subject_id):
        by_group.setdefault(subject.group or "", []).append(subject)
    picked: list[Subject] = []
    queues = [by_group[g] for g in sorted(by_group)]
    while len(picked) < min(n, len(subjects)):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return sorted(picked, key=lambda s: s.subject_id)


def label_vae_command_line(args: argparse.Namespace) -> str:
    """The full command with every training option spelled out (reproduces the run)."""
    options = [
        ("--config", args.config or "lean"),
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
        ("--lr", args.lr),
        ("--beta", args.beta),
        ("--beta-warmup-epochs", args.beta_warmup_epochs),
        ("--lr-decay-epochs", args.lr_decay_epochs),
        ("--seed", args.seed),
        ("--device", args.device),
        ("--out", args.out),
        ("--resume", args.resume),
        ("--val-fraction", args.val_fraction),
        ("--max-subjects", args.max_subjects),
        ("--checkpoint-every", args.checkpoint_every),
        ("--validate-every", args.validate_every),
        ("--spacing-mm", args.spacing_mm),
        ("--split", args.split),
        ("--frame", args.frame),
        ("--max-rotation-deg", args.max_rotation_deg),
        ("--max-shift-px", args.max_shift_px),
    ]
    return command_line("label-vae", args, options, ("--no-augment", "--flip", "--no-atlas"))


def _print_epoch(record: EpochRecord) -> None:
    line = (
        f"epoch {record.epoch}: loss {record.loss:.1f} (ce {record.ce:.1f}, kl {record.kl:.2f}, "
        f"beta {record.beta:.3g}) lr {record.lr:.2g}, {record.slices_per_s:.0f} slices/s"
    )
    if record.val_dice:
        d = record.val_dice
        line += (
            f"; val Dice lv {d['lv']:.3f} myo {d['myo']:.3f} rv {d['rv']:.3f} mean {d['mean']:.3f}"
        )
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    """Read the cohort, train, write the model and its resumable state."""
    check_training_outputs(args)
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.io.cohort import read_cohort
    from cardio_explorer.engine.io.split import read_split

    config = resolve_config(args.config)
    if args.resume is None and config is None:
        config = PRESETS["lean"]
    if args.spacing_mm <= 0:
        raise CardioInputError("--spacing-mm", f"must be positive, got {args.spacing_mm}")
    options = TrainOptions(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        beta=args.beta,
        beta_warmup_epochs=args.beta_warmup_epochs,
        lr_decay_epochs=args.lr_decay_epochs,
        seed=args.seed,
        device=args.device,
        val_fraction=args.val_fraction,
        checkpoint_every=args.checkpoint_every,
        validate_every=args.validate_every,
        augment=not args.no_augment,
        max_rotation_deg=args.max_rotation_deg,
        max_shift_px=args.max_shift_px,
        flip=args.flip,
        threads=args.threads,
        progress=not args.no_progress,
    )
    ids = None if args.split is None else read_split(args.split, "train")
    subjects = read_cohort(
        args.data, frames="ed_es", subject_ids=ids, progress=not args.no_progress
    )
    if args.max_subjects is not None:
        subjects = pick_subjects(subjects, args.max_subjects)
    summary = {"data": str(args.data.resolve()), "command": label_vae_command_line(args)}
    if ids is not None:
        summary["split"] = {"file": str(args.split), "part": "train", "n_subjects": len(ids)}
    result = train_label_vae_on_subjects(
        subjects,
        args.out,
        config,
        options,
        resume=args.resume,
        summary=summary,
        spacing_mm=args.spacing_mm,
        frame=args.frame,
        with_atlas=not args.no_atlas,
        on_epoch=_print_epoch,
    )
    if not distributed.is_main():  # under torchrun rank 0 reports what it wrote
        return 0
    dice = result.final_val_dice
    shown = f"mean {dice['mean']:.3f}" if dice else "no validation subjects"
    print(
        f"wrote {args.out} (state: {state_path_for(args.out)}); final val Dice {shown}; "
        f"{result.seconds:.0f} s on {result.extra['training']['device']}"
        + ("; latent atlas included" if "atlas" in result.extra else "")
    )
    return 0
