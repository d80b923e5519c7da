"""``synthesize`` after its arguments are parsed: models, ranks, the run and its summary line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

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
    from cardio_explorer.engine.factory.cases import check_image_model
    from cardio_explorer.engine.factory.distributed import (
        close_ranks,
        device_for_rank,
        init_ranks,
        torchrun_world,
    )
    from cardio_explorer.engine.factory.run import Ranks, run_plan
    from cardio_explorer.engine.label_vae.morph import PathologyMorph
    from cardio_explorer.engine.nn.checkpoint import file_sha256
    from cardio_explorer.engine.spade.network import load_spade

    world = torchrun_world()
    if world is not None and shard != (1, 1):
        raise CardioInputError("--shard", "not with torchrun: ranks already split the plan")
    device = choose_device(device_for_rank(args.device, world[2]) if world else args.device)
    morph = PathologyMorph.from_checkpoint(checkpoint, device)
    try:
        resolved = plan.resolve(morph.atlas)
    except CardioInputError as error:
        raise flag_error(error, args) from None
    if args.print_plan:
        print(resolved.to_toml(), end="")
        return 0
    spade = load_spade(spade_checkpoint, device) if spade_checkpoint is not None else None
    if spade is not None:
        check_image_model(morph, spade)
    if world is None and shard[1] > 1:
        ranks = Ranks(rank=shard[0] - 1, world=shard[1], shard=True)
    else:
        ranks = init_ranks(device)
    if ranks.world > 1 and not ranks.shard:
        torch.set_num_threads(max(1, torch.get_num_threads() // min(ranks.world, 8)))
    provenance = {
        "command": getattr(args, "command_line", None),
        "checkpoint": str(checkpoint),
        "label_vae_sha256": file_sha256(checkpoint),
        "checkpoint_sha256": file_sha256(checkpoint),
        "spade_checkpoint": str(spade_checkpoint) if spade_checkpoint else "",
        "spade_sha256": file_sha256(spade_checkpoint) if spade_checkpoint else "",
        "precision": current_precision(device),
        "device": describe(device),
    }
    try:
        result = run_plan(
            morph,
            spade,
            resolved,
            args.out,
            ranks=ranks,
            overwrite=args.overwrite,
            workers=args.workers,
            progress=not args.no_progress,
            provenance=provenance,
        )
    finally:
        close_ranks()
    p = resolved.plan
    n_files = result.n_written * len(p.phases) * (2 if p.images else 1)
    if ranks.shard:
        part = f" (shard {ranks.rank + 1}/{ranks.world} of {resolved.n_cases})"
    elif ranks.world > 1:
        part = f" (rank {ranks.rank} of {ranks.world}, {resolved.n_cases} in all)"
    else:
        part = ""
    resumed = f", {result.n_skipped} already there" if result.n_skipped else ""
    where = f"{result.manifest.name} to " if result.manifest else "files to "
    print(
        f"wrote {n_files} files for {result.n_written} morphs{part}{resumed} and "
        f"{where}{result.folder} in {result.elapsed_s:.1f} s on {describe(device)}, "
        f"{current_precision(device)}"
    )
    if args.bench:
        rate = result.n_written / result.elapsed_s if result.elapsed_s > 0 else 0.0
        what = f"{', '.join(p.phases)}, 32 slices, labels{' + images' if p.images else ''}"
        print(
            f"bench: {rate:.2f} cases/s ({result.n_written} cases: {what}; "
            f"{args.workers} writer processes, {torch.get_num_threads()} torch threads)"
        )
    return 0
