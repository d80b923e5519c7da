"""``cardio-explorer bench``: median timings of the engine's hot paths, fp32 and bf16 side by side.

Every path runs under each precision asked for (default: both) in the same process, one after
the other, so the ratio compares like with like on a shared machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from cardio_explorer.engine.device import (
    cpu_flags,
    cpu_supports_bf16,
    describe,
    precision_scope,
)
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write_text, check_output_file
from cardio_explorer.engine.limits import MAX_REPEATS, check_count

# One module per measured thing: app/commands/bench_<name>.py with
# ``measure(device: torch.device, repeats: int) -> list[BenchResult]``, run once per precision.
BENCHES: tuple[str, ...] = (
    "label_vae",
    "cheart",
    "cheart_widths",
    "spade",
    "gui_path",
    "training",
)
BENCH_PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


@dataclass(frozen=True)
class BenchResult:
    """One timed path: name, device, precision, median and spread in ms, and its target."""

    name: str
    device: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    target_ms: float | None = None
    precision: str = "fp32"

    @property
    def meets_target(self) -> bool | None:
        """True/False against the target, None when there is none."""
        return None if self.target_ms is None else self.median_ms <= self.target_ms


def time_call(
    fn: Callable[[], object], repeats: int, warmup: int = 2, sync: Callable[[], None] | None = None
) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls after ``warmup`` untimed ones.

    The warm-up matters for bf16: oneDNN creates its kernels on the first calls.
    """
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
    parser = subparsers.add_parser(
        "bench", help="time the hot paths (decode, synthesis, GUI path, training), fp32 vs bf16"
    )
    parser.add_argument(
        "--repeats", type=int, default=20, help=f"timed calls per path, 1-{MAX_REPEATS} (median)"
    )
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    parser.add_argument(
        "--precision",
        choices=["both", *BENCH_PRECISIONS],
        default="both",
        help="fp32, bf16, or both side by side (default)",
    )
    parser.add_argument("--only", nargs="*", default=None, help=f"subset of {list(BENCHES)}")
    parser.add_argument(
        "--json", "--out", dest="json", type=Path, default=None, help="also write results as JSON"
    )
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> tuple[list[str], list[torch.device], list[str]]:
    """Benches, devices and precisions to run; one clear error before any work."""
    check_count("--repeats", args.repeats, 1, MAX_REPEATS)
    names = list(BENCHES) if args.only is None else list(args.only)
    unknown = [n for n in names if n not in BENCHES]
    if unknown or not names:
        got = repr(unknown[0]) if unknown else "nothing"
        raise CardioInputError("--only", f"unknown path {got}; expected {list(BENCHES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CardioInputError("--device", "CUDA was asked for but no CUDA GPU is available")
    if args.json:  # a results file is meant to be rewritten; but a folder or no access is refused
        check_output_file(args.json, overwrite=True)
    devices = [torch.device("cpu")] if args.device in ("all", "cpu") else []
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    precisions = list(BENCH_PRECISIONS) if args.precision == "both" else [args.precision]
    return names, devices, precisions


def run(args: argparse.Namespace) -> int:
    """Run the selected benchmarks under each precision and print them side by side."""
    names, devices, precisions = _check(args)
    results: list[BenchResult] = []
    for name in names:
        module = importlib.import_module(f"cardio_explorer.app.commands.bench_{name}")
        for device in devices:
            for precision in precisions:
                with precision_scope(precision):
                    measured = module.measure(device, args.repeats)
                results += [dataclasses.replace(r, precision=precision) for r in measured]
    print(render_table(results))
    if args.json:
        atomic_write_text(args.json, json.dumps(bench_json(results), indent=2) + "\n")
    return 0


def render_table(results: list[BenchResult]) -> str:
    """One row per path and device: fp32 and bf16 medians (p10-p90), their ratio, the target.

    The target is judged on the bf16 median where bf16 was measured (the default on CPUs
    with bf16 units and on CUDA), else on the fp32 one.
    """
    rows: dict[tuple[str, str], dict[str, BenchResult]] = {}
    for r in results:
        rows.setdefault((r.name, r.device), {})[r.precision] = r
    lines = [
        f"# cardio-explorer bench on {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, CPU bf16 units: {'yes' if cpu_supports_bf16() else 'no'}",
        f"{'path':<62} {'device':<20} {'fp32 ms (p10-p90)':>22} {'bf16 ms (p10-p90)':>22} "
        f"{'ratio':>6} {'target':>8}",
    ]
    cell = lambda r: "-" if r is None else f"{r.median_ms:.1f} ({r.p10_ms:.1f}-{r.p90_ms:.1f})"  # noqa: E731
    for (name, device), by in rows.items():
        fp32, bf16 = by.get("fp32"), by.get("bf16")
        ratio = f"{fp32.median_ms / bf16.median_ms:.2f}x" if fp32 and bf16 else "-"
        judged = bf16 or fp32
        target = "" if judged.target_ms is None else f"{judged.target_ms:g}"
        mark = {True: " ok", False: " MISS", None: ""}[judged.meets_target]
        lines.append(
            f"{name:<62} {device:<20} {cell(fp32):>22} {cell(bf16):>22} {ratio:>6} "
            f"{target:>8}{mark}"
        )
    return "\n".join(lines)


def bench_json(results: list[BenchResult]) -> dict:
    """The ``--json`` document: machine facts and one entry per path and precision."""
    device = platform.processor() or platform.machine()
    if torch.cuda.is_available():
        device += f" + {torch.cuda.get_device_name(0)}"
    return {
        "device": device,
        "cpu_flags": cpu_flags(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "results": [
            {
                "path": r.name,
                "device": r.device,
                "precision": r.precision,
                "median_ms": round(r.median_ms, 3),
                "p10_ms": round(r.p10_ms, 3),
                "p90_ms": round(r.p90_ms, 3),
                "repeats": r.repeats,
                "target_ms": r.target_ms,
            }
            for r in results
        ],
    }
