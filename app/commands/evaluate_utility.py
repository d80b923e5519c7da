"""``cardio-explorer evaluate utility``: does synthetic data help a segmenter on real hearts?"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from cardio_explorer import resources
from cardio_explorer.app.commands._reports import (
    add_run_arguments,
    check_report_out,
    exit_status,
    targets_met,
    use_threads,
    write_report,
)
from cardio_explorer.app.commands._utility_report import render_markdown
from cardio_explorer.app.commands.train_label_vae import resolve_config as vae_config
from cardio_explorer.engine.device import choose_device, current_precision, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import check_output_file
from cardio_explorer.engine.label_vae.config import PRESETS
from cardio_explorer.engine.nn.checkpoint import Checkpoint, load_checkpoint
from cardio_explorer.engine.spade.config import SpadeConfig, resolve_config
from cardio_explorer.engine.spade.segmenter import LR_SCHEDULES
from cardio_explorer.engine.utility.arms import ARM_NAMES
from cardio_explorer.engine.utility.data import read_scarce, read_test_set
from cardio_explorer.engine.utility.plot import write_plot, write_samples
from cardio_explorer.engine.utility.run import UtilitySettings, evaluate_utility
from cardio_explorer.engine.utility.synthetic import SynthesisSettings

DEFAULTS = UtilitySettings()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate utility``."""
    p = subparsers.add_parser(
        "utility",
        help="does synthetic data help a segmenter on real hearts? (3 or 4 arms x seeds)",
        description="Train a 2D U-Net on a pathology-scarce set of real subjects (a) alone, "
        "(b) with affine + elastic augmentation, (c) with synthetic pathological cases (label "
        "VAE morphs of the scarce NOR subjects + SPADE images; both models trained on the "
        "scarce subjects only), the same steps each, and score Dice per 3D volume on each "
        "real test set; --combined adds (d), augmentation + synthetic. Writes report.json, "
        "report.md and a PNG plot.",
    )
    p.add_argument("--data", type=Path, required=True, help="real subjects with images (ACDC)")
    p.add_argument(
        "--split",
        type=Path,
        default=None,
        help="split file (e.g. docs/acdc_split.json): the scarce set comes from its train part, "
        "and --test on the --data folder tests its held_out part",
    )
    p.add_argument(
        "--test",
        type=Path,
        action="append",
        required=True,
        help="real test folder with images (repeatable; each reported on its own)",
    )
    p.add_argument("--out", type=Path, required=True, help="report JSON path")
    p.add_argument("--plot", type=Path, default=None, help="PNG plot (default: OUT with .png)")
    p.add_argument("--overwrite", action="store_true", help="replace existing report files")
    p.add_argument("--n-nor", type=int, default=12, help="NOR subjects in the scarce set")
    p.add_argument("--n-per-group", type=int, default=2, help="subjects per pathology group")
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULTS.seeds))
    p.add_argument("--steps", type=int, default=DEFAULTS.steps, help="segmenter steps per arm")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=DEFAULTS.lr_schedule,
        help="segmenter learning rate: cosine (annealed to zero over the steps) or constant "
        "(before session 12)",
    )
    p.add_argument("--base", type=int, default=DEFAULTS.base, help="U-Net base channels")
    p.add_argument("--size", type=int, default=DEFAULTS.size, help="in-plane grid (pixels)")
    p.add_argument("--spacing-mm", type=float, default=DEFAULTS.spacing_mm)
    p.add_argument("--seg-size", type=int, default=DEFAULTS.seg_size, help="segmenter input")
    p.add_argument("--vae-config", default="lean", help="label VAE preset or JSON file")
    p.add_argument("--vae-epochs", type=int, default=SynthesisSettings().vae_epochs)
    p.add_argument(
        "--spade-config",
        default=None,
        help="SPADE preset or JSON (default: the --spade-init model's, which is then fine-tuned)",
    )
    p.add_argument("--spade-epochs", type=int, default=SynthesisSettings().spade_epochs)
    p.add_argument(
        "--spade-init",
        type=Path,
        default=None,
        help="SPADE checkpoint fine-tuned on the scarce set (default: the bundled cohort SPADE, "
        "resources/spade_cohort.safetensors, which never saw a real heart); one trained on "
        "subjects of --data outside the scarce set is refused",
    )
    p.add_argument(
        "--spade-from-scratch", action="store_true", help="train SPADE from random weights"
    )
    p.add_argument(
        "--combined",
        action="store_true",
        help="also train arm (d): real + augmentation + synthetic, to see whether the synthetic "
        "cases add anything to classic augmentation (reports delta.d_minus_b; a third more time)",
    )
    p.add_argument("--alphas", type=float, nargs="+", default=[1.0], help="morph strengths")
    p.add_argument("--seeds-per-target", type=int, default=1, help="morph draws per target")
    p.add_argument(
        "--atlas-refine-steps",
        type=int,
        default=SynthesisSettings().atlas_refine_steps,
        help="MAP steps refining each atlas code after the encoder (0: the encoder's means)",
    )
    add_run_arguments(p)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Every option checked before any reading or training."""
    positive = {
        "--n-nor": args.n_nor,
        "--steps": args.steps,
        "--vae-epochs": args.vae_epochs,
        "--spade-epochs": args.spade_epochs,
        "--seeds-per-target": args.seeds_per_target,
        "--base": args.base,
    }
    for flag, value in positive.items():
        if value < 1:
            raise CardioInputError(flag, f"must be at least 1, got {value}")
    if not 0 <= args.atlas_refine_steps <= 1000:
        raise CardioInputError(
            "--atlas-refine-steps", f"must lie in [0, 1000], got {args.atlas_refine_steps}"
        )
    if args.n_per_group < 1:
        raise CardioInputError("--n-per-group", f"must be at least 1, got {args.n_per_group}")
    if args.batch_size < 2:
        raise CardioInputError("--batch-size", f"must be at least 2, got {args.batch_size}")
    if args.size % 8 or args.size < 16:
        raise CardioInputError("--size", f"must be a multiple of 8 (>= 16), got {args.size}")
    if args.seg_size > args.size:
        raise CardioInputError("--seg-size", f"must be at most --size ({args.size})")
    if not args.spacing_mm > 0:
        raise CardioInputError("--spacing-mm", f"must be positive, got {args.spacing_mm}")
    if any(not 0.0 <= a <= 1.0 for a in args.alphas):
        raise CardioInputError("--alphas", f"must lie in [0, 1], got {args.alphas}")
    for flag, folder in [("--data", args.data)] + [("--test", t) for t in args.test]:
        if not folder.is_dir():
            raise CardioInputError(flag, f"{folder} is not a folder")
    if args.split is not None and not args.split.is_file():
        raise CardioInputError("--split", f"{args.split} is not a file")
    names = [t.resolve() for t in args.test]
    if len(set(names)) != len(names):
        raise CardioInputError("--test", "the same folder is given twice")


def _models(args: argparse.Namespace) -> tuple[Any, SpadeConfig, Any]:
    """(label VAE config, SPADE config, SPADE checkpoint to start from or None)."""
    vae = vae_config(args.vae_config) or PRESETS["lean"]
    if vae.size != args.size:
        raise CardioInputError("--vae-config", f"is {vae.size} px, --size is {args.size}")
    bundled = args.spade_init or resources.bundled_checkpoint("spade_cohort")
    init = None
    if not args.spade_from_scratch and args.spade_config is None:
        if not bundled.is_file():
            raise CardioInputError(bundled, "missing; pass --spade-from-scratch to train one")
        init = load_checkpoint(bundled, "spade")
        spade = SpadeConfig.from_json(init.config)
    else:
        spade = resolve_config(args.spade_config or "lean")
        if not args.spade_from_scratch and bundled.is_file():
            candidate = load_checkpoint(bundled, "spade")
            init = candidate if SpadeConfig.from_json(candidate.config) == spade else None
    if spade.image_size != args.size:
        raise CardioInputError("--spade-config", f"is {spade.image_size} px, --size is {args.size}")
    return vae, spade, init


def check_init_saw_only_scarce(init: Checkpoint | None, data: Path, scarce: set[str]) -> None:
    """Refuse a SPADE to start from that trained on real subjects of ``data`` outside the scarce
    set: arm (c) would then see real hearts that arms (a) and (b) never see."""
    extra = init.extra if init is not None else {}
    trained_on = extra.get("data")
    if not trained_on or Path(trained_on).resolve() != data.resolve():
        return
    seen = {str(s) for key in ("train_subjects", "held_out_subjects") for s in extra.get(key, [])}
    outside = sorted(seen - scarce)
    if outside:
        shown = ", ".join(outside[:3]) + (", ..." if len(outside) > 3 else "")
        raise CardioInputError(
            "--spade-init",
            f"{init.path} was trained on {len(outside)} subjects of {data} outside the scarce "
            f"set ({shown}); start from the cohort SPADE (the default) or --spade-from-scratch",
        )


def run(args: argparse.Namespace) -> int:
    """Evaluate; write the JSON report, its Markdown and the plot; 0 (1 with --strict + a miss)."""
    check_report_out(args)
    plot = args.plot or args.out.with_suffix(".png")
    samples = plot.with_name(plot.stem + "_samples.png")
    for path in (plot, samples):
        check_output_file(path, args.overwrite)
    _check(args)
    settings = UtilitySettings(
        size=args.size,
        spacing_mm=args.spacing_mm,
        seg_size=args.seg_size,
        steps=args.steps,
        batch_size=args.batch_size,
        base=args.base,
        lr_schedule=args.lr_schedule,
        seeds=tuple(args.seeds),
        combined=args.combined,
    )
    vae, spade, init = _models(args)
    synthesis = SynthesisSettings(
        vae_config=vae,
        vae_epochs=args.vae_epochs,
        spade_config=spade,
        spade_epochs=args.spade_epochs,
        alphas=tuple(args.alphas),
        seeds_per_target=args.seeds_per_target,
        atlas_refine_steps=args.atlas_refine_steps,
    )
    settings = UtilitySettings(**{**settings.__dict__, "synthesis": synthesis})
    use_threads(args)
    device = choose_device(args.device)
    start, cpu_start = time.perf_counter(), time.process_time()
    scarce, held = read_scarce(args.data, args.split, args.n_nor, args.n_per_group)
    ids = {s.subject_id for s in scarce}
    check_init_saw_only_scarce(init, args.data, ids)
    tests = [read_test_set(t, args.data, held, ids) for t in args.test]
    if len({t.name for t in tests}) != len(tests):
        raise CardioInputError("--test", "two test folders share a name; rename one")

    def say(text: str) -> None:
        if not args.no_progress:
            print(text, file=sys.stderr, flush=True)

    shown: dict[str, Any] = {}  # example slices, drawn once everything else has succeeded
    body = evaluate_utility(
        scarce,
        tests,
        settings,
        device,
        spade_init=init,
        spade_config=spade,
        threads=args.threads,
        progress=not args.no_progress,
        say=say,
        on_slices=shown.update,
    )
    report = {
        "command": _command(args),
        "data": str(args.data),
        "split": None if args.split is None else str(args.split),
        "device": describe(device),
        "precision": current_precision(device),
        **body,
        "plot": str(plot),
        "samples": str(samples),
        "elapsed_s": round(time.perf_counter() - start, 1),
        # CPU seconds of this process: the wall time alone hides how busy a shared machine was
        "cpu_s": round(time.process_time() - cpu_start, 1),
    }
    tables = {name: t["dice"] for name, t in report["test_sets"].items()}
    write_plot(plot, tables, ARM_NAMES)
    write_samples(samples, shown)
    markdown = write_report(args.out, report, render_markdown)
    lines = [
        f"{name}: c-a pathological {_signed(t['delta']['c_minus_a'].get('pathological'))}, "
        f"NOR {_signed(t['delta']['c_minus_a'].get('nor'))}, c-b pathological "
        f"{_signed(t['delta']['c_minus_b'].get('pathological'))}"
        + (
            f", d-b pathological {_signed(t['delta']['d_minus_b'].get('pathological'))}"
            if "d_minus_b" in t["delta"]
            else ""
        )
        for name, t in report["test_sets"].items()
    ]
    print("Utility evaluation: " + "; ".join(lines))
    print(f"{targets_met(report)}; wrote {args.out}, {markdown}, {plot} and {samples}")
    return exit_status(report, args.strict)


# (flag, attribute) of every option that changes the result, in the order --help lists them
_REPRODUCE = (
    ("--data", "data"), ("--split", "split"), ("--test", "test"), ("--n-nor", "n_nor"),
    ("--n-per-group", "n_per_group"), ("--seeds", "seeds"), ("--steps", "steps"),
    ("--batch-size", "batch_size"), ("--base", "base"), ("--size", "size"),
    ("--spacing-mm", "spacing_mm"), ("--seg-size", "seg_size"), ("--vae-config", "vae_config"),
    ("--vae-epochs", "vae_epochs"), ("--spade-config", "spade_config"),
    ("--spade-epochs", "spade_epochs"), ("--alphas", "alphas"),
    ("--seeds-per-target", "seeds_per_target"),
    ("--atlas-refine-steps", "atlas_refine_steps"), ("--precision", "precision"),
)  # fmt: skip


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this report (every value spelled out)."""
    parts = ["cardio-explorer", "evaluate", "utility"]
    for flag, name in _REPRODUCE:
        value = getattr(args, name, None)
        if value is None:
            continue
        if flag == "--test":
            for folder in value:
                parts += [flag, str(folder)]
        elif isinstance(value, list):
            parts += [flag, *(str(v) for v in value)]
        else:
            parts += [flag, str(value)]
    if args.spade_init is not None:
        parts += ["--spade-init", str(args.spade_init)]
    if args.spade_from_scratch:
        parts.append("--spade-from-scratch")
    if args.combined:
        parts.append("--combined")
    return " ".join(shlex.quote(p) for p in parts)


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"
