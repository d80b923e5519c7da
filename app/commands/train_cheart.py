"""``cardio-explorer train cheart``: train the conditional 4D heart model on a dense cohort."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from cardio_explorer.app.commands._precision import add_no_amp_alias
from cardio_explorer.app.commands._training import (
    add_common_training_arguments,
    check_training_outputs,
)
from cardio_explorer.engine.cheart.config import CONFIGS, CHeartConfig
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.config_files import read_config

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("runs/cheart/cheart.safetensors")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train cheart``."""
    parser = subparsers.add_parser(
        "cheart",
        help="conditional 4D heart model (CHeart): conditions -> 20-frame label sequence",
        description="Train CHeart on a cohort with all frames labelled (e.g. `cardio-explorer "
        "cohort --geometry dense`). Writes the best model (by validation Dice) to --out and a "
        "resumable state file beside it.",
    )
    parser.add_argument("--data", type=Path, required=True, help="cohort folder (all frames)")
    parser.add_argument(
        "--config",
        default="lean",
        help="lean (default: CPU-sized, motion decoding with a motion code), lean-basis (the "
        "same without the motion code), lean-motion (without the motion basis either), "
        "lean-labels (the same grid decoding every frame's labels, the first stage of the "
        "bundled model), paper, or a JSON file of "
        'config fields (optionally with "base": "paper")',
    )
    add_common_training_arguments(
        parser,
        epochs=500,
        batch_size=None,
        seed=0,
        out=DEFAULT_OUT,
        batch_size_help="default: the config's (8)",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from this CHeart checkpoint's weights (e.g. a label decoder becoming a "
        "motion decoder: its displacement channels start at zero)",
    )
    parser.add_argument("--lr", type=float, default=None, help="default: the config's (5e-4)")
    parser.add_argument(
        "--lr-decay-epochs",
        type=int,
        default=0,
        help="linear learning-rate decay to 0 over the last N epochs (default 0: constant)",
    )
    parser.add_argument("--beta", type=float, default=None, help="KL weight (default: config)")
    parser.add_argument(
        "--beta-warmup-epochs",
        type=float,
        default=10.0,
        help="the KL weight ramps up from 0 over this many epochs (0: full weight at once, "
        "e.g. with --init-from)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=30,
        help="stop after this many validations without improvement (0: never)",
    )
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--validate-every", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=5)
    add_no_amp_alias(parser)
    parser.set_defaults(func=run)


def config_from_arg(value: str) -> CHeartConfig:
    """A named config or a JSON file of fields (over ``base``, default lean)."""
    return read_config(value, CONFIGS, CHeartConfig.to_dict, _from_fields)


def _from_fields(fields: dict[str, Any], source: str | Path) -> CHeartConfig:
    try:
        return CHeartConfig.from_dict(fields)
    except TypeError as error:
        raise CardioInputError(source, f"invalid config ({error})") from None


def run(args: argparse.Namespace) -> int:
    """Train; print one line per epoch and a summary."""
    check_training_outputs(args)
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.cheart.options import EpochRecord, TrainOptions
    from cardio_explorer.engine.cheart.training import train_cheart_on_folder
    from cardio_explorer.engine.nn import distributed

    config = (
        None if args.resume is not None and args.config == "lean" else config_from_arg(args.config)
    )
    options = TrainOptions(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay_epochs=args.lr_decay_epochs,
        beta=args.beta,
        beta_warmup_epochs=args.beta_warmup_epochs,
        seed=args.seed,
        device=args.device,
        val_fraction=args.val_fraction,
        patience=args.patience,
        validate_every=args.validate_every,
        checkpoint_every=args.checkpoint_every,
        threads=args.threads,
        progress=not args.no_progress,
    )

    def report(record: EpochRecord) -> None:
        val = ""
        if record.val_dice:
            d = record.val_dice
            val = (
                f" val Dice {d['mean']:.4f} (lv {d['lv']:.3f} myo {d['myo']:.3f} rv {d['rv']:.3f})"
            )
        print(
            f"epoch {record.epoch}/{args.epochs} loss {record.loss:.5f} ce {record.ce:.5f} "
            f"kl {record.kl:.2f}{val} {record.seconds:.1f} s "
            f"({record.sequences_per_s:.2f} seq/s)",
            flush=True,
        )

    summary = {"command": "train cheart", "config_arg": args.config}
    if args.init_from is not None:
        summary["init_from"] = str(args.init_from)
    result = train_cheart_on_folder(
        args.data,
        args.out,
        config,
        options,
        resume=args.resume,
        init_from=args.init_from,
        summary=summary,
        on_epoch=report,
    )
    if not distributed.is_main():  # under torchrun rank 0 reports what it wrote
        return 0
    best = result.best_val_dice["mean"] if result.best_val_dice else None
    best_text = f"{best:.4f}" if best is not None else "n/a"
    print(
        f"CHeart: best epoch {result.best_epoch}, validation Dice {best_text}"
        f"{' (early stop)' if result.stopped_early else ''}; {result.seconds:.0f} s on "
        f"{result.device}; wrote {result.model_path} (state: {result.state_path})"
    )
    return 0
