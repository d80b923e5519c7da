"""``cardio-explorer cohort``: write a synthetic 3D+t heart cohort in the ACDC layout."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from cardio_explorer.engine.cohort.build import generate_cohort
from cardio_explorer.engine.cohort.generate import CohortConfig
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.limits import MAX_WORKERS, available_cpus, check_count
from cardio_explorer.engine.subject import GROUPS

_ALIASES = {"RV": "ARV"}


def parse_groups(text: str) -> dict[str, float]:
    """'NOR,DCM' (equal shares) or 'NOR=0.4,DCM=0.15,...' (shares, normalised) -> {group: share}."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise CardioInputError("--groups", "no group given")
    weighted = ["=" in item for item in items]
    if any(weighted) and not all(weighted):
        raise CardioInputError(
            "--groups", "give either names only (equal shares) or NAME=SHARE for every group"
        )
    shares: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        name = name.strip().upper()
        name = _ALIASES.get(name, name)
        if name not in GROUPS:
            raise CardioInputError("--groups", f"unknown group {name!r}; expected {GROUPS}")
        if name in shares:
            raise CardioInputError("--groups", f"group {name} given twice")
        try:
            share = float(value) if value else 1.0
        except ValueError:
            raise CardioInputError(
                "--groups", f"share of {name} is not a number: {value!r}"
            ) from None
        if not share >= 0 or share == float("inf"):
            raise CardioInputError("--groups", f"share of {name} must be >= 0, got {value}")
        shares[name] = share
    total = sum(shares.values())
    if total <= 0:
        raise CardioInputError("--groups", "at least one group needs a positive share")
    return {name: share / total for name, share in shares.items()}


def _triple(kind: type, what: str):
    def parse(text: str) -> tuple:
        parts = text.split(",")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what}: expected Z,Y,X numbers, got {text!r}"
            ) from None
        if len(values) != 3 or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"{what}: expected three positive Z,Y,X values")
        return values

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``cohort`` command."""
    parser = subparsers.add_parser(
        "cohort",
        help="generate a synthetic 3D+t heart cohort (ACDC layout, ground truth)",
        description="Generate synthetic hearts with known group, conditions and phenotypes, "
        "written as ACDC subject folders (Info.cfg, ED/ES frames, 4D image and labels with "
        "ACDC label values 1 RV, 2 MYO, 3 LV) plus manifest.csv with the phenotypes measured "
        "on the written labels.",
    )
    parser.add_argument("--n", type=int, default=200, help="number of subjects (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--geometry",
        choices=["sax", "dense"],
        default="sax",
        help="sax: ACDC-like short-axis stacks (1.3-1.7 mm pixels, 8-14 slices of 5-10 mm); "
        "dense: a 3D grid for the 4D model (see --grid, --spacing)",
    )
    parser.add_argument(
        "--groups",
        default=",".join(GROUPS),
        help="groups and shares: 'NOR,DCM' (equal shares) or 'NOR=0.4,DCM=0.15,...' "
        f"(normalised); names from {', '.join(GROUPS)} (RV = ARV); default all, equal",
    )
    parser.add_argument(
        "--misalignment",
        type=float,
        default=0.0,
        metavar="MM",
        help="SD in mm of a random in-plane shift per short-axis slice (breath-hold "
        "misalignment; sax only); default 0",
    )
    parser.add_argument(
        "--frames", type=int, default=20, help="frames per cardiac cycle (default 20; ED = 1)"
    )
    parser.add_argument(
        "--grid",
        type=_triple(int, "--grid"),
        default=(64, 128, 128),
        metavar="Z,Y,X",
        help="dense geometry voxels (default 64,128,128)",
    )
    parser.add_argument(
        "--spacing",
        type=_triple(float, "--spacing"),
        default=(2.0, 1.25, 1.25),
        metavar="Z,Y,X",
        help="dense geometry spacing in mm (default 2,1.25,1.25)",
    )
    parser.add_argument(
        "--no-images", action="store_true", help="write labels only (no MR-like images)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="processes generating subjects (default 2)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (must not exist or be empty)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output folder"
    )
    parser.add_argument(
        "--no-progress", "--quiet", dest="quiet", action="store_true", help="no progress bar"
    )
    parser.set_defaults(func=run)


def _command_line(args: argparse.Namespace, config: CohortConfig) -> str:
    """The equivalent command line (for cohort.json)."""
    groups = ",".join(f"{g}={v:g}" for g, v in config.groups.items())
    parts = ["cardio-explorer", "cohort", "--n", str(config.n), "--seed", str(config.seed)]
    parts += ["--geometry", config.geometry, "--groups", groups, "--frames", str(config.n_frames)]
    parts += ["--misalignment", f"{config.misalignment_mm:g}"]
    if config.geometry == "dense":
        parts += ["--grid", ",".join(map(str, config.dense_shape))]
        parts += ["--spacing", ",".join(f"{v:g}" for v in config.dense_spacing)]
    if not config.images:
        parts.append("--no-images")
    return shlex.join([*parts, "--out", str(args.out)])


def run(args: argparse.Namespace) -> int:
    """Generate the cohort and print where it went."""
    check_count("--workers", args.workers, 1, min(MAX_WORKERS, 4 * available_cpus()))
    config = CohortConfig(
        n=args.n,
        seed=args.seed,
        geometry=args.geometry,
        groups=parse_groups(args.groups),
        n_frames=args.frames,
        misalignment_mm=args.misalignment,
        dense_shape=tuple(args.grid),
        dense_spacing=tuple(args.spacing),
        images=not args.no_images,
    )
    start = time.perf_counter()
    result = generate_cohort(
        config,
        args.out,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.quiet,
        command=_command_line(args, config),
    )
    elapsed = time.perf_counter() - start
    print(f"wrote {len(result.rows)} subjects to {result.folder} in {elapsed:.1f} s")
    return 0
