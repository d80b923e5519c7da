"""``synthesize`` after its arguments are parsed: models, ranks, the run and its summary line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardio_explorer.app.commands._ranks import say
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.plan import Plan


def execute(
    args: argparse.Namespace,
    plan: Plan,
    checkpoint: Path,
    spade_checkpoint: Path | None,
    shard: tuple[int, int],
    flag_error: Callable[[CardioInputError, argparse.Namespace], CardioInputError],
) -> int:
    """Load the models, resolve the plan, run this process's share; 0 on success."""
    import torch

    from cardio_explorer.engine.device import choose_device, current_precision, describe
    from cardio_explorer.engine.factory.cases import ReferenceStyles, check_image_model
    from cardio_explorer.engine.factory.distributed import (
        close_ranks,
        device_for_rank,
        init_ranks,
        torchrun_world,
    )
    from cardio_explorer.engine.factory.run import Ranks, morph_work, run_work
    from cardio_explorer.engine.label_vae.morph import PathologyMorph
    from cardio_explorer.engine.nn.checkpoint import file_sha256
    from cardio_explorer.engine.spade.network import load_spade

    world = torchrun_world()
    if world is not None and shard != (1, 1):
        raise CardioInputError("--shard", "not with torchrun: ranks already split the plan")
    device = choose_device(device_for_rank(args.device, world[2]) if world else args.device)
    sequences = args.conditions_grid is not None or args.conditions_csv is not None
    if sequences:
        work, hashes = _sequence_work(args, plan, device, spade_checkpoint)
    else:
        morph = PathologyMorph.from_checkpoint(checkpoint, device)
        try:
            resolved = plan.resolve(morph.atlas)
        except CardioInputError as error:
            raise flag_error(error, args) from None
        hashes = {"checkpoint": str(checkpoint), "label_vae_sha256": file_sha256(checkpoint)}
    if args.print_plan:
        print(work.to_toml() if sequences else resolved.to_toml(), end="")
        return 0
    styles = None
    if not sequences:
        spade = load_spade(spade_checkpoint, device) if spade_checkpoint is not None else None
        if spade is not None:
            check_image_model(morph, spade)
        if resolved.plan.style == "reference":
            if args.style_from is None:
                raise CardioInputError("--style-from", "the plan's style is reference: name DIR")
            # every subject's image read and encoded now: a missing one stops before any work
            styles = ReferenceStyles(args.style_from, spade).load(resolved.plan.subjects)
    if world is None and shard[1] > 1:
        ranks = Ranks(rank=shard[0] - 1, world=shard[1], shard=True)
    else:
        ranks = init_ranks(device)
    if ranks.world > 1 and not ranks.shard:
        torch.set_num_threads(max(1, torch.get_num_threads() // min(ranks.world, 8)))
    provenance = {
        "command": getattr(args, "command_line", None),
        **hashes,
        "spade_checkpoint": str(spade_checkpoint) if spade_checkpoint else "",
        "spade_sha256": file_sha256(spade_checkpoint) if spade_checkpoint else "",
        "precision": current_precision(device),
        "device": describe(device),
    }
    if sequences:
        work = replace_common(work, provenance)
    else:
        if styles is not None:
            provenance["style_from"] = str(args.style_from)
        work = morph_work(morph, spade, resolved, provenance, styles)
    try:
        result = run_work(
            work,
            args.out,
            ranks=ranks,
            overwrite=args.overwrite,
            workers=args.workers,
            progress=not args.no_progress,
            provenance=provenance,
        )
    finally:
        close_ranks()
    n_files = result.n_files
    images = work.plan.images if sequences else plan.images
    if ranks.shard:
        part = f" (shard {ranks.rank + 1}/{ranks.world} of {work.n_cases})"
    elif ranks.world > 1:
        part = f" (rank {ranks.rank} of {ranks.world}, {work.n_cases} in all)"
    else:
        part = ""
    resumed = f", {result.n_skipped} already there" if result.n_skipped else ""
    where = f"{result.manifest.name} to " if result.manifest else "files to "
    what = "sequences" if sequences else "morphs"
    # under torchrun rank 0 prints its line (it merged the manifest, so it ends last); the
    # other ranks log theirs at debug level (-v)
    say(
        f"wrote {n_files} files for {result.n_written} {what}{part}{resumed} and "
        f"{where}{result.folder} in {result.elapsed_s:.1f} s on {describe(device)}, "
        f"{current_precision(device)}"
    )
    if ranks.shard:
        say(
            "when every shard is done, with their folders in one: cardio-explorer synthesize "
            "--merge-shards DIR"
        )
    if args.bench:
        rate = result.n_written / result.elapsed_s if result.elapsed_s > 0 else 0.0
        kind = "4D sequences" if sequences else f"{', '.join(plan.phases)}, 32 slices"
        made = f"{kind}, labels{' + images' if images else ''}"
        say(
            f"bench: {rate:.2f} cases/s ({result.n_written} cases: {made}; "
            f"{args.workers} writer processes, {torch.get_num_threads()} torch threads)"
        )
    return 0


def _sequence_work(
    args: argparse.Namespace, plan: Plan, device: Any, spade_checkpoint: Path | None
) -> tuple[Any, dict[str, str]]:
    """The CHeart sequence plan of --conditions-grid / --conditions-csv, and its model hashes."""
    from cardio_explorer import resources
    from cardio_explorer.engine.cheart.groups import group_index, parse_group
    from cardio_explorer.engine.cheart.model import load_model
    from cardio_explorer.engine.factory.sequences import SequencePlan, SequenceWork, parse_grid
    from cardio_explorer.engine.nn.checkpoint import file_sha256
    from cardio_explorer.engine.spade.network import load_spade

    try:
        group = parse_group(args.group)
    except CardioInputError as error:
        raise CardioInputError("--group", error.problem) from None
    path = args.cheart_checkpoint or resources.bundled_checkpoint("cheart")
    model = load_model(args.cheart_checkpoint, device)
    try:
        group_index(model, group)
    except CardioInputError as error:
        raise CardioInputError("--group", f"{error.problem} ({path})") from None
    options = {"images": plan.images, "labels": plan.labels, "layout": plan.layout}
    options["frames"] = args.frames or "all"
    if args.conditions_csv is not None:
        sequence_plan = SequencePlan.from_csv(args.conditions_csv, plan.seeds, group, **options)
    else:
        grid = parse_grid(args.conditions_grid)
        sequence_plan = SequencePlan.from_grid(model, grid, plan.seeds, group, **options)
    spade = load_spade(spade_checkpoint, device) if spade_checkpoint is not None else None
    hashes = {"cheart_checkpoint": str(path), "cheart_sha256": file_sha256(path)}
    return SequenceWork(sequence_plan, model, spade, {}), hashes


def replace_common(work: Any, provenance: dict[str, Any]) -> Any:
    """The sequence work with the per-row provenance columns (hashes, precision) filled in."""
    from cardio_explorer.engine.factory.sequences import SequenceWork

    return SequenceWork(work.plan, work.model, work.spade, provenance)


def merge(args: argparse.Namespace) -> int:
    """``--merge-shards DIR``: the shards in DIR merged into one dataset; 0 on success."""
    from cardio_explorer.engine.factory.shards import merge_shards

    others = [f for f in ("out", "shard", "plan") if getattr(args, f) is not None]
    if others:
        raise CardioInputError("--merge-shards", f"merges DIR in place; not with --{others[0]}")
    result = merge_shards(args.merge_shards)
    nnunet = "" if result.n_training is None else f", dataset.json numTraining {result.n_training}"
    print(
        f"merged {result.n_shards} shards: {result.n_cases} cases into {result.manifest.name}"
        f"{nnunet} in {result.manifest.parent}"
    )
    return 0
