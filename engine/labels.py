"""The one label table: 0 background, 1 LV blood pool, 2 LV myocardium, 3 RV blood pool.

Values, short and long names and colours of every label, the foreground structures by short
name, and the ACDC remap (ACDC files store 1 RV, 2 MYO, 3 LV; M&Ms files store the values as in
memory). Numpy only: the viewer draws from this table too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

import numpy as np


class Label(IntEnum):
    """Label values in memory (M&Ms / CHeart order). ACDC files are remapped on load."""

    BACKGROUND = 0
    LV = 1
    MYO = 2
    RV = 3


@dataclass(frozen=True)
class LabelEntry:
    """One row of a label table: value, short name, long name, RGB colour 0-255."""

    value: int
    name: str
    description: str
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class LabelTable:
    """Names and colours of label values, written beside exports for ITK-SNAP / 3D Slicer."""

    entries: tuple[LabelEntry, ...]

    @property
    def values(self) -> tuple[int, ...]:
        """All label values, background included."""
        return tuple(e.value for e in self.entries)

    def entry(self, value: int) -> LabelEntry:
        """The row of a label value (KeyError when the table has none)."""
        for e in self.entries:
            if e.value == value:
                return e
        raise KeyError(value)

    def name(self, value: int) -> str:
        """Short name of a label value."""
        return self.entry(value).name

    def rgb(self, value: int) -> tuple[int, int, int]:
        """Colour of a label value, RGB 0-255."""
        return self.entry(value).rgb


LABEL_TABLE = LabelTable(
    (
        LabelEntry(0, "background", "Background", (0, 0, 0)),
        LabelEntry(1, "lv", "LV blood pool", (220, 60, 60)),
        LabelEntry(2, "myo", "LV myocardium", (70, 170, 90)),
        LabelEntry(3, "rv", "RV blood pool", (60, 110, 220)),
    )
)

# The foreground structures by short name, in value order: {'lv': 1, 'myo': 2, 'rv': 3}.
STRUCTURES: Mapping[str, Label] = MappingProxyType(
    {e.name: Label(e.value) for e in LABEL_TABLE.entries if e.value != Label.BACKGROUND}
)

# Every label file the project writes (cohort, synthesize, the app's exports, `labels`) holds
# ACDC values, the field's default, with a label table beside it; in memory LV is 1.
FILES_HOLD_ACDC_VALUES = True

# ACDC stores 1 RV, 2 MYO, 3 LV; index = value on disk, entry = value in memory.
ACDC_TO_INTERNAL = (0, 3, 2, 1)
INTERNAL_TO_ACDC = (0, 3, 2, 1)
# M&Ms and CHeart store the values as in memory: no remap.


def remap(labels: np.ndarray, table: tuple[int, ...]) -> np.ndarray:
    """uint8 copy of ``labels`` with each value v replaced by ``table[v]`` (ACDC_TO_INTERNAL...)."""
    return np.asarray(table, dtype=np.uint8)[labels]


def value_names(acdc_labels: bool = False) -> dict[int, str]:
    """Foreground value -> upper-case short name as written to disk ({1: 'LV', ...} or ACDC's)."""
    out = {}
    for name, value in STRUCTURES.items():
        out[INTERNAL_TO_ACDC[value] if acdc_labels else int(value)] = name.upper()
    return dict(sorted(out.items()))


def describe_values(acdc_labels: bool = False) -> str:
    """Foreground values as files state them: '1 LV, 2 MYO, 3 RV' (ACDC '1 RV, 2 MYO, 3 LV')."""
    return ", ".join(f"{value} {name}" for value, name in value_names(acdc_labels).items())
