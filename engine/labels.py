"""The label convention: 0 background, 1 LV blood pool, 2 LV myocardium, 3 RV blood pool."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


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

    def name(self, value: int) -> str:
        """Short name of a label value."""
        for e in self.entries:
            if e.value == value:
                return e.name
        raise KeyError(value)


LABEL_TABLE = LabelTable(
    (
        LabelEntry(0, "background", "Background", (0, 0, 0)),
        LabelEntry(1, "lv", "LV blood pool", (220, 60, 60)),
        LabelEntry(2, "myo", "LV myocardium", (70, 170, 90)),
        LabelEntry(3, "rv", "RV blood pool", (60, 110, 220)),
    )
)

# Every label file the project writes (cohort, synthesize, the app's exports, `labels`) holds
# ACDC values, the field's default, with a label table beside it; in memory LV is 1.
FILES_HOLD_ACDC_VALUES = True

# ACDC stores 1 RV, 2 MYO, 3 LV; index = value on disk, entry = value in memory.
ACDC_TO_INTERNAL = (0, 3, 2, 1)
INTERNAL_TO_ACDC = (0, 3, 2, 1)
