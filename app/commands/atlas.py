"""``cardio-explorer atlas``: build a label VAE's latent atlas again from labelled subjects."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from cardio_explorer.engine.errors import CardioInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``atlas`` command."""
    parser = subparsers.add_parser(
        "atlas",
        help="rebuild a label VAE's latent atlas from labelled subjects (weights unchanged)",
        description="Encode labelled subjects with a label VAE and write a copy of its "
        "checkpoint whose latent atlas (group statistics, stack lengths, NOR reference "
        "subjects with their BSA) comes from them. The validation subjects the checkpoint "
        "records are left out, as training left them out. Use it after the atlas code changed, "
        "or to morph another cohort's subjects with an existing model.",
    )
    parser.add_argument("--data", type=Path, required=True, help="labelled subjects (any layout)")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="label VAE (default: the bundled one)"
    )
    parser.add_argument(
        "--split", type=Path, default=None, help="split file: use its 'train' ids from --data"
    )
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, encode, write; print what was written."""
    # start-up: torch and the readers load when the command runs, not when the parser lists it
    from cardio_explorer.app.commands._checkpoints import label_vae_checkpoint
    from cardio_explorer.engine.device import choose_device
    from cardio_explorer.engine.io.atomic import check_output_file
    from cardio_explorer.engine.io.cohort import read_cohort
    from cardio_explorer.engine.io.split import read_split
    from cardio_explorer.engine.label_vae.rebuild import rebuild_atlas

    checkpoint = label_vae_checkpoint(args.checkpoint)
    out = check_output_file(args.out, args.overwrite)
    if out.resolve() == checkpoint.resolve():
        raise CardioInputError("--out", "must differ from --checkpoint (written atomically)")
    ids = None if args.split is None else read_split(args.split, "train")
    progress = not args.no_progress
    subjects = read_cohort(args.data, frames="ed_es", subject_ids=ids, progress=progress)
    parts = ["atlas", "--data", str(args.data), "--checkpoint", str(checkpoint)]
    parts += [] if args.split is None else ["--split", str(args.split)]
    command = "cardio-explorer " + shlex.join([*parts, "--out", str(args.out)])
    atlas = rebuild_atlas(checkpoint, subjects, out, choose_device(args.device), command, progress)
    groups = ", ".join(f"{g} {n}" for g, n in atlas.info["subjects_per_group"].items())
    print(f"wrote {out}: atlas of {atlas.info['n_subjects']} subjects ({groups})")
    return 0
