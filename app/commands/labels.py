"""``cardio-explorer labels``: the label table (names and colours) for ITK-SNAP or 3D Slicer."""

from __future__ import annotations

import argparse
from pathlib import Path

from cardio_explorer.engine.errors import CardioInputError

# format -> the suffix its program reads the table by
FORMATS = {"itksnap": ".txt", "slicer": ".ctbl"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``labels`` command."""
    parser = subparsers.add_parser(
        "labels",
        help="write the label table for ITK-SNAP (.txt) or 3D Slicer (.ctbl)",
        description="Write the names and colours of the label values: an ITK-SNAP label "
        "description (.txt; Segmentation > Import Label Descriptions) or a 3D Slicer colour "
        "table (.ctbl; load it, then pick it as the label map's lookup table).",
    )
    parser.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default=None,
        help="itksnap or slicer (default: from --out's suffix, .ctbl is slicer)",
    )
    parser.add_argument("--out", type=Path, required=True, help="table file to write")
    parser.add_argument(
        "--app-labels",
        action="store_true",
        help="the values the app holds in memory (1 LV, 2 MYO, 3 RV); default ACDC values "
        "(1 RV, 2 MYO, 3 LV), as every file cohort, synthesize and the app write",
    )
    # the default since every output holds ACDC values; kept so older command lines still run
    parser.add_argument("--acdc-labels", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def table_format(out: Path, fmt: str | None) -> str:
    """The format asked for, or the one --out's suffix implies; one error when they disagree."""
    suffix = out.suffix.lower()
    if fmt is None:
        return "slicer" if suffix == ".ctbl" else "itksnap"
    if (suffix == ".ctbl") != (fmt == "slicer"):
        raise CardioInputError(
            "--out", f"{out.name} does not suit --format {fmt}: use a {FORMATS[fmt]} file name"
        )
    return fmt


def run(args: argparse.Namespace) -> int:
    """Write the table; print where."""
    # start-up: imported when the command runs, not when the parser lists it
    from cardio_explorer.engine.io.atomic import check_output_file
    from cardio_explorer.engine.io.nifti import write_label_table

    fmt = table_format(args.out, args.format)
    check_output_file(args.out, args.overwrite)
    if args.app_labels and args.acdc_labels:
        raise CardioInputError("--app-labels", "not with --acdc-labels")
    written = write_label_table(args.out, acdc_labels=not args.app_labels)
    program = "3D Slicer" if fmt == "slicer" else "ITK-SNAP"
    values = (
        "app values (1 LV, 2 MYO, 3 RV)" if args.app_labels else "ACDC values (1 RV, 2 MYO, 3 LV)"
    )
    print(f"wrote {written} ({program} label table, {values})")
    return 0
