"""``cardio-explorer bench``: median timings of the engine's hot paths on CPU and CUDA."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from cardio_explorer.engine.device import describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write_text, check_output_file
from cardio_explorer.engine.limits import MAX_REPEATS, check_count

# One module per measured thing: app/commands/bench_<name>.py with
# ``measure(device: torch.device, repeats: int) -> list[BenchResult]``.
BENCHES: tuple[str, ...] = ("label_vae", "cheart", "spade", "gui_path")


@dataclass(frozen=True)
class BenchResult:
    """One timed path: name, device, median and spread in ms, and what the target is."""

    name: str
    device: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    target_ms: float | None = None

    @property
    def meets_target(self) -> bool | None:
        """True/False against the target, None when there is none."""
        return None if self.target_ms is None else self.median_ms <= self.target_ms


def time_call(
    fn: Callable[[], object], repeats: int, warmup: int = 2, sync: Callable[[], None] | None = None
) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def summarise(
    name: str, device: torch.device, times: list[float], target_ms: float | None = None
) -> BenchResult:
    """Median and 10th/90th percentiles of a list of timings."""
    ordered = sorted(times)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return BenchResult(
        name,
        describe(device),
        statistics.median(ordered),
        pick(0.1),
        pick(0.9),
        len(ordered),
        target_ms,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command."""
    parser = subparsers.add_parser("bench", help="time the hot paths (decode, synthesis, GUI path)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per path (median)")
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    parser.add_argument("--only", nargs="*", default=None, help=f"subset of {list(BENCHES)}")
    parser.add_argument("--out", type=Path, default=None, help="also write results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the selected benchmarks and print a table."""
    check_count("--repeats", args.repeats, 1, MAX_REPEATS)
    unknown = [name for name in args.only or () if name not in BENCHES]
    if unknown:
        raise CardioInputError("--only", f"unknown path {unknown[0]!r}; expected {list(BENCHES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CardioInputError("--device", "CUDA was asked for but no CUDA GPU is available")
    if args.out:  # a results file is meant to be rewritten; but a folder or no access is refused
        check_output_file(args.out, overwrite=True)
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    results: list[BenchResult] = []
    for name in args.only or BENCHES:
        module = importlib.import_module(f"cardio_explorer.app.commands.bench_{name}")
        for device in devices:
            results.extend(module.measure(device, args.repeats))
    print(
        f"# cardio-explorer bench on {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}"
    )
    print(f"{'path':<48} {'device':<28} {'median ms':>10} {'p10':>8} {'p90':>8} {'target':>8}")
    for r in results:
        target = "" if r.target_ms is None else f"{r.target_ms:g}"
        mark = {True: " ok", False: " MISS", None: ""}[r.meets_target]
        print(
            f"{r.name:<48} {r.device:<28} {r.median_ms:>10.2f} {r.p10_ms:>8.2f} "
            f"{r.p90_ms:>8.2f} {target:>8}{mark}"
        )
    if args.out:
        atomic_write_text(args.out, json.dumps([asdict(r) for r in results], indent=2))
    return 0
