"""``cardio-explorer synthesize``: write a labelled dataset of NOR -> pathology morphs, headless."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cardio_explorer.app.commands._checkpoints import label_vae_checkpoint, resolve_checkpoint
from cardio_explorer.app.commands._precision import add_precision_argument
from cardio_explorer.engine.cheart.groups import GROUP_HELP, parse_group
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.morphs import DEFAULT_ALPHAS
from cardio_explorer.engine.factory.plan import (
    DEFAULT_SEEDS,
    LABEL_VALUES,
    LAYOUTS,
    Plan,
    parse_seed_spec,
    read_plan,
)
from cardio_explorer.engine.factory.sequence_files import FRAME_CHOICES, check_sequence_output
from cardio_explorer.engine.limits import MAX_STEPS, check_count
from cardio_explorer.engine.subject import PATHOLOGY_GROUPS

# Plan fields -> the flags that set them (errors name the flag the user typed).
_FLAGS = {
    "groups": "--groups",
    "subjects": "--subjects",
    "seeds": "--seeds",
    "alphas": "--alphas",
    "alpha": "--alphas",
    "phases": "--phases",
    "layout": "--layout",
    "labels": "--labels",
    "frames": "--frames",
}


def _items(flag: str, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise CardioInputError(flag, f"expected a comma-separated list, got {text!r}")
    return items


def parse_seeds(text: str) -> list[int]:
    """'0-19' (inclusive), '0,3,5' or a mix ('0-4,10') -> seeds, in the order given."""
    _items("--seeds", text)
    return list(parse_seed_spec(text, "--seeds"))


def parse_alphas(text: str | None, steps: int | None) -> list[float]:
    """--alphas '0,0.5,1' or --steps N (N evenly spaced values from 0 to 1); the default else."""
    if steps is not None:
        check_count("--steps", steps, 2, MAX_STEPS)
        return [round(float(a), 6) for a in np.linspace(0.0, 1.0, steps)]
    if text is None:
        return list(DEFAULT_ALPHAS)
    alphas = []
    for item in _items("--alphas", text):
        try:
            alpha = float(item)
        except ValueError:
            raise CardioInputError("--alphas", f"{item!r} is not a number") from None
        if not 0.0 <= alpha <= 1.0:
            raise CardioInputError("--alphas", f"must be in [0, 1], got {item}")
        alphas.append(alpha)
    return alphas


def parse_shard(text: str | None) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; None -> (1, 1)."""
    if text is None:
        return 1, 1
    k, slash, n = text.partition("/")
    try:
        if not slash:
            raise ValueError
        pair = int(k), int(n)
    except ValueError:
        raise CardioInputError("--shard", f"expected K/N such as 2/4, got {text!r}") from None
    if pair[1] < 1 or not 1 <= pair[0] <= pair[1]:
        raise CardioInputError("--shard", f"K/N needs 1 <= K <= N, got {text}")
    return pair


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synthesize`` command."""
    parser = subparsers.add_parser(
        "synthesize",
        help="write a labelled dataset of NOR -> pathology morphs (NIfTI, images, manifest.csv)",
        description="For every NOR reference subject of the checkpoint's latent atlas, target "
        "group, seed and alpha, write the morphed ED/ES label maps (32 slices over the "
        "subject's extent) and, with --images, SPADE images; labels.txt (the label values), "
        "plan.toml and manifest.csv with provenance and the phenotypes measured on what was "
        "written. Flags set the common cases, --plan FILE the rest (flags given override it), "
        "--print-plan shows the plan. A re-run of the same plan into the same folder resumes. "
        "Under torchrun each rank writes its share, rank 0 merges the manifest and prints the "
        "summary; batches are per process, each rank's those one process would use (there is "
        "no --batch-size: one unit at a time, a morph's alphas or a condition set's seeds). "
        "Without torchrun, --shard K/N writes shard K of N with manifest-K-of-N.csv, and "
        "--merge-shards DIR merges the shards once their folders are in one. "
        "--conditions-grid/-csv write 4D CHeart sequences instead, in any --layout.",
    )
    parser.add_argument(
        "--plan", type=Path, default=None, help="plan TOML file ([morphs], [output])"
    )
    parser.add_argument(
        "--print-plan", action="store_true", help="print the plan as TOML and exit (no work)"
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="label VAE checkpoint (default: bundled)"
    )
    parser.add_argument(
        "--spade-checkpoint", type=Path, default=None, help="SPADE checkpoint (default: bundled)"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument(
        "--groups",
        default=None,
        help=f"target groups, comma-separated (default: {','.join(PATHOLOGY_GROUPS)}, those in "
        "the atlas)",
    )
    parser.add_argument(
        "--subjects", default=None, help="NOR reference subject ids, comma-separated, or all"
    )
    alphas = parser.add_mutually_exclusive_group()
    alphas.add_argument(
        "--alphas",
        default=None,
        help="alphas in [0, 1], comma-separated (default: "
        f"{','.join(f'{a:g}' for a in DEFAULT_ALPHAS)})",
    )
    alphas.add_argument("--steps", type=int, default=None, help="N alphas evenly from 0 to 1")
    parser.add_argument(
        "--seeds", default=None, help=f"'0-19', '0,3,5' or a mix (default {DEFAULT_SEEDS})"
    )
    parser.add_argument(
        "--phases", default=None, help="phases to write, ED,ES (phenotypes always use both)"
    )
    parser.add_argument(
        "--uncorrelated",
        dest="correlated",
        action="store_const",
        const=False,
        default=None,
        help="raw truncated-normal samples (no copula)",
    )
    parser.add_argument(
        "--images",
        action="store_const",
        const=True,
        default=None,
        help="also write SPADE images (style seed from the plan and the case)",
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=None,
        help="flat (default), nnunet (nnU-Net v2 raw: imagesTr, labelsTr, dataset.json) or acdc",
    )
    parser.add_argument(
        "--style-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --images: each image in its reference subject's own style, encoded from "
        "that subject's ED image in DIR (ACDC layout, e.g. ../shared/acdc); default: a style "
        "seed per morph from the plan",
    )
    parser.add_argument(
        "--labels",
        choices=LABEL_VALUES,
        default=None,
        help="label values on disk: acdc (1 RV, 2 MYO, 3 LV; default, as cohort) or app "
        "(1 LV, 2 MYO, 3 RV); labels.txt beside the files says which",
    )
    sequences = parser.add_mutually_exclusive_group()
    sequences.add_argument(
        "--conditions-grid",
        default=None,
        metavar="SPEC",
        help="4D CHeart sequences instead of morphs, for every combination of e.g. "
        "'age=30,50,70;sex=F,M;sbp=120' (conditions not given: the training means per sex)",
    )
    sequences.add_argument(
        "--conditions-csv",
        type=Path,
        default=None,
        help="4D CHeart sequences for each row of a CSV (subject, age, sex, height, weight, sbp; "
        "optional group: the row's hearts come from that group's prior component, and Info.cfg "
        "says so; rows without one take --group)",
    )
    parser.add_argument(
        "--group",
        default=None,
        metavar="GROUP",
        help=f"4D sequences: {GROUP_HELP}; default any. The manifest's group column and "
        "Info.cfg name the component each heart came from",
    )
    parser.add_argument(
        "--cheart-checkpoint", type=Path, default=None, help="CHeart checkpoint (default: bundled)"
    )
    parser.add_argument(
        "--frames",
        choices=FRAME_CHOICES,
        default=None,
        help="4D sequences in --layout nnunet: every frame a 3D case (all, default) or ED and "
        "ES only (ed-es)",
    )
    parser.add_argument("--shard", default=None, metavar="K/N", help="write shard K of N only")
    parser.add_argument(
        "--merge-shards",
        type=Path,
        default=None,
        metavar="DIR",
        help="merge the --shard K/N runs whose folders are in DIR (copied together, or one "
        "shared folder) into one dataset: manifest.csv, provenance.json, dataset.json",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes writing NIfTI files (0: in this one)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_precision_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="time the plan (into --out, or a temporary folder) and print cases per second",
    )
    parser.set_defaults(func=run)


def plan_from_args(args: argparse.Namespace) -> Plan:
    """The plan of --plan (or the defaults) with the flags given on top."""
    base = read_plan(args.plan) if args.plan is not None else Plan()
    overrides: dict[str, Any] = {
        "seeds": None if args.seeds is None else tuple(parse_seeds(args.seeds)),
        "alphas": None
        if args.alphas is None and args.steps is None
        else tuple(parse_alphas(args.alphas, args.steps)),
        "groups": None if args.groups is None else tuple(_items("--groups", args.groups)),
        "phases": None if args.phases is None else tuple(_items("--phases", args.phases)),
        "correlated": args.correlated,
        "images": args.images,
        "layout": args.layout,
        "labels": args.labels,
        "style": None if args.style_from is None else "reference",
    }
    if args.subjects is not None:
        text = args.subjects.strip()
        chosen = None if text.lower() == "all" else tuple(_items("--subjects", text))
        base = replace(base, subjects=chosen)
    return base.with_overrides(overrides)


def _flag_error(error: CardioInputError, args: argparse.Namespace) -> CardioInputError:
    """The error of a plan field, named by the flag that set it (or the plan file)."""
    flag = _FLAGS.get(str(error.thing))
    if flag is None:
        return error
    if flag == "--alphas" and args.steps is not None:
        flag = "--steps"
    given = getattr(args, flag[2:], None) is not None or (flag == "--steps")
    if args.plan is not None and not given:
        return CardioInputError(f"{args.plan}: {error.thing}", error.problem)
    return CardioInputError(flag, error.problem)


# flags that only morphs use, refused with the sequence flags
_MORPH_ONLY = ("plan", "groups", "subjects", "alphas", "steps", "phases", "correlated")
_MORPH_ONLY += ("style_from",)


def run(args: argparse.Namespace) -> int:
    """Resolve the plan, run this process's share, print a summary line."""
    from cardio_explorer.app.commands._synthesize_run import execute, merge

    if args.merge_shards is not None:
        return merge(args)
    if args.conditions_grid is not None or args.conditions_csv is not None:
        given = [name for name in _MORPH_ONLY if getattr(args, name) is not None]
        if given:
            flag = "--uncorrelated" if given[0] == "correlated" else f"--{given[0]}"
            flag = flag.replace("_", "-")
            raise CardioInputError(flag, "is for morphs, not with --conditions-grid/-csv")
        try:
            check_sequence_output(args.layout or "flat", bool(args.images), args.frames or "all")
        except CardioInputError as error:
            raise _flag_error(error, args) from None
        try:
            parse_group(args.group)
        except CardioInputError as error:
            raise CardioInputError("--group", error.problem) from None
    elif args.frames is not None:
        raise CardioInputError("--frames", "is for 4D sequences (--conditions-grid/-csv)")
    elif args.group is not None:
        raise CardioInputError(
            "--group", "is for 4D sequences (--conditions-grid/-csv); morph targets: --groups"
        )
    plan = plan_from_args(args)
    if args.out is None and not (args.print_plan or args.bench):
        raise CardioInputError("--out", "required (the dataset folder to write)")
    if args.workers < 0:
        raise CardioInputError("--workers", f"must be 0 or more, got {args.workers}")
    shard = parse_shard(args.shard)
    path = label_vae_checkpoint(args.checkpoint)
    spade_path = None
    if plan.images:
        from cardio_explorer import resources

        spade_path = resolve_checkpoint(
            args.spade_checkpoint,
            resources.bundled_checkpoint("spade"),
            "bundled SPADE model",
            "train one with `cardio-explorer train spade` (see the README)",
        )
    if args.bench and args.out is None:
        with tempfile.TemporaryDirectory(prefix="synthesize-bench-") as folder:
            args.out = Path(folder) / "data"
            return execute(args, plan, path, spade_path, shard, _flag_error)
    return execute(args, plan, path, spade_path, shard, _flag_error)
