"""``cardio-explorer synthesize``: write a labelled dataset of NOR -> pathology morphs, headless."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cardio_explorer.app.commands._checkpoints import label_vae_checkpoint
from cardio_explorer.app.commands._precision import add_precision_argument
from cardio_explorer.engine.device import choose_device, current_precision, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.dataset import (
    DEFAULT_ALPHAS,
    check_phases,
    plan_jobs,
    shard,
    write_dataset,
)
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.limits import MAX_SEED, MAX_SEEDS, MAX_STEPS, check_count
from cardio_explorer.engine.nn.checkpoint import file_sha256
from cardio_explorer.engine.subject import PATHOLOGY_GROUPS

DEFAULT_SEEDS = "0-19"
# The engine names its arguments plainly; on the command line they are these flags.
_FLAGS = {"groups": "--groups", "subjects": "--subjects", "seeds": "--seeds"}


def _items(flag: str, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise CardioInputError(flag, f"expected a comma-separated list, got {text!r}")
    return items


def parse_seeds(text: str) -> list[int]:
    """'0-19' (inclusive), '0,3,5' or a mix ('0-4,10') -> seeds, in the order given."""
    ranges: list[range] = []
    for item in _items("--seeds", text):
        first, dash, last = item.partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise CardioInputError(
                "--seeds", f"{item!r} is not a seed or a range like 0-19"
            ) from None
        if low < 0 or high < low:
            raise CardioInputError("--seeds", f"{item!r}: need 0 <= first <= last")
        if high > MAX_SEED:
            raise CardioInputError("--seeds", f"{item!r}: seeds go up to {MAX_SEED}")
        ranges.append(range(low, high + 1))
    # Counted before any list is built: '0-1000000000' is refused at once.
    count = sum(len(r) for r in ranges)
    if count > MAX_SEEDS:
        raise CardioInputError("--seeds", f"{count:,} seeds; at most {MAX_SEEDS:,} per run")
    return [seed for r in ranges for seed in r]


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
        help="write a labelled dataset of NOR -> pathology morphs (NIfTI + manifest.csv)",
        description="For every NOR reference subject of the checkpoint's latent atlas, target "
        "group, seed and alpha, write the morphed ED/ES label maps "
        "(<subject>_<group>_s<seed>_a<alpha x 100>_<phase>_gt.nii.gz, 32 slices over the "
        "subject's extent), labels.txt and manifest.csv with the phenotypes measured on them "
        "and whether they meet the group's ACDC rule. --shard K/N writes every N-th job from the "
        "K-th and manifest-K-of-N.csv: N machines with the same arguments write disjoint files, "
        "and the shard folders merge by copying, their manifests by concatenation (header once).",
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="label VAE checkpoint (default: bundled)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (must not exist or be empty)"
    )
    parser.add_argument(
        "--groups",
        default=None,
        help=f"target groups, comma-separated (default: {','.join(PATHOLOGY_GROUPS)}, those in "
        "the atlas)",
    )
    parser.add_argument(
        "--subjects", default="all", help="NOR reference subject ids, comma-separated, or all"
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
        "--seeds", default=DEFAULT_SEEDS, help=f"'0-19', '0,3,5' or a mix (default {DEFAULT_SEEDS})"
    )
    parser.add_argument(
        "--phases", default="ED,ES", help="phases to write (phenotypes always use both)"
    )
    parser.add_argument(
        "--uncorrelated", action="store_true", help="raw truncated-normal samples (no copula)"
    )
    parser.add_argument(
        "--acdc-labels",
        action="store_true",
        help="ACDC label values on disk (1 RV, 2 MYO, 3 LV) instead of 1 LV, 2 MYO, 3 RV",
    )
    parser.add_argument("--shard", default=None, metavar="K/N", help="write shard K of N only")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_precision_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Parse the arguments, plan and run the jobs, print a summary line."""
    seeds = parse_seeds(args.seeds)
    alphas = parse_alphas(args.alphas, args.steps)
    k, n = parse_shard(args.shard)
    groups = None if args.groups is None else _items("--groups", args.groups)
    subjects = (
        None if args.subjects.strip().lower() == "all" else _items("--subjects", args.subjects)
    )
    try:
        phases = check_phases(_items("--phases", args.phases))
    except CardioInputError as error:
        raise CardioInputError("--phases", error.problem) from None
    path = label_vae_checkpoint(args.checkpoint)
    device = choose_device(args.device)
    morph = PathologyMorph.from_checkpoint(path, device)
    try:
        jobs = plan_jobs(morph.atlas, groups, subjects, seeds, alphas, not args.uncorrelated)
    except CardioInputError as error:
        flags = {**_FLAGS, "alphas": "--steps" if args.steps is not None else "--alphas"}
        raise CardioInputError(flags.get(error.thing, error.thing), error.problem) from None
    mine = shard(jobs, k, n)
    result = write_dataset(
        morph,
        mine,
        args.out,
        phases=phases,
        acdc_labels=args.acdc_labels,
        overwrite=args.overwrite,
        shard_of=(k, n),
        progress=not args.no_progress,
        provenance={
            "command": getattr(args, "command_line", None),
            "checkpoint": str(path),
            "checkpoint_sha256": file_sha256(path),
            "groups": sorted({job.group for job in jobs}),
            "subjects": sorted({job.subject_id for job in jobs}),
            "seeds": seeds,
            "alphas": alphas,
            "correlated": not args.uncorrelated,
            "precision": current_precision(device),
        },
    )
    part = f" (shard {k}/{n} of {len(jobs)})" if n > 1 else ""
    print(
        f"wrote {result.n_files} label files for {len(mine)} morphs{part} and "
        f"{result.manifest.name} to {result.folder} in {result.elapsed_s:.1f} s "
        f"on {describe(device)}, {current_precision(device)}"
    )
    return 0
