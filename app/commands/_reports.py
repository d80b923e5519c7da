"""What the ``evaluate`` commands share: their common options, report files and exit status.

Each evaluation writes ``--out`` (JSON) and the same name with ``.md`` (a human summary whose
first section is the targets table); with ``--strict`` a missed target makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardio_explorer.app.commands._precision import add_precision_argument
from cardio_explorer.engine.io.atomic import atomic_write_texts, check_output_file, write_error


def add_input_arguments(
    parser: argparse.ArgumentParser,
    model: str,
    data_help: str,
    data_required: bool = True,
    data_repeatable: bool = False,
) -> None:
    """``--checkpoint`` (default: the bundled ``model``), ``--data`` (a list of folders when
    ``data_repeatable``) and ``--out``."""
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help=f"{model} checkpoint (default: the bundled one)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=data_required,
        action="append" if data_repeatable else "store",
        help=data_help,
    )
    parser.add_argument("--out", type=Path, required=True, help="report JSON path")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing report (JSON and .md)"
    )


def check_report_out(args: argparse.Namespace) -> None:
    """Refuse, before any work, a report that exists (without --overwrite) or cannot be written."""
    for path in (args.out, args.out.with_suffix(".md")):
        check_output_file(path, args.overwrite)


def add_run_arguments(parser: argparse.ArgumentParser, device_default: str = "auto") -> None:
    """``--device``, ``--precision``, ``--threads``, ``--strict`` and ``--no-progress``."""
    parser.add_argument("--device", default=device_default, help="auto, cpu or cuda")
    add_precision_argument(parser)
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def use_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (when given) before any CPU work."""
    if args.threads is None:
        return
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.nn.training import configure_cpu_threads

    configure_cpu_threads(args.threads)


def write_report(
    out: Path, report: dict[str, Any], render_markdown: Callable[[dict[str, Any]], str]
) -> Path:
    """Write the JSON report to ``out`` and its Markdown beside it; returns the Markdown path.

    Both or neither: each is written in full to a temporary file before either is renamed.
    """
    markdown = out.with_suffix(".md")
    texts = {out: json.dumps(report, indent=2, allow_nan=False) + "\n"}
    texts[markdown] = render_markdown(report)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(out, error) from None
    atomic_write_texts(texts)
    return markdown


def targets_met(report: dict[str, Any]) -> str:
    """'k/n targets met' for the summary line."""
    targets = report["targets"].values()
    return f"{sum(bool(t['pass']) for t in targets)}/{len(targets)} targets met"


def exit_status(report: dict[str, Any], strict: bool) -> int:
    """1 when ``strict`` and a target was missed, else 0."""
    return 1 if strict and not report["passed"] else 0


def fmt(value: Any, digits: int = 3) -> str:
    """A report value as Markdown text: n/a for None, yes/no for bools, fixed digits for floats."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_head(title: str, summary: str, targets: dict[str, dict[str, Any]]) -> list[str]:
    """The opening Markdown lines of every report: title, one summary line, targets table."""
    return [
        f"# {title}",
        "",
        summary,
        "",
        "## Targets",
        "",
        "| target | value | threshold | pass |",
        "|---|---|---|---|",
        *(
            f"| {name} | {fmt(t['value'])} | {t['threshold']} | {fmt(t['pass'])} |"
            for name, t in targets.items()
        ),
    ]


def add_real_figures(report: dict[str, Any], real: dict[str, Any]) -> None:
    """Put ``--real`` figures under ``real`` in ``report``, their targets beside the cohort's."""
    report["real"] = real
    report["targets"] = {**report.get("targets", {}), **real["targets"]}
    report["passed"] = all(t["pass"] for t in report["targets"].values())
