"""The utility figure: Dice per group per arm (mean +- SD over seeds), one panel per test set.

Drawn with Pillow (already installed with imageio) rather than matplotlib, which the project
does not depend on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cardio_explorer.engine.subject import GROUPS

ARM_COLOURS = {
    "a": (120, 120, 120),
    "b": (70, 130, 200),
    "c": (220, 110, 40),
    "d": (120, 70, 160),
}
POOL_ORDER = (*GROUPS, "unknown", "pathological", "all")
PANEL_W, PANEL_H, MARGIN = 760, 330, 72
Y_MAX = 1.0


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _floor(table: Mapping[str, Any]) -> float:
    """The axis floor: a tenth below the lowest whisker, so small differences stay visible."""
    lows = [c["mean"]["mean"] - c["mean"]["sd"] for arm in table.values() for c in arm.values()]
    return max(0.0, float(np.floor((min(lows, default=0.0) - 0.05) * 10) / 10))


def _panel(draw: ImageDraw.ImageDraw, top: int, name: str, table: Mapping[str, Any]) -> None:
    font, small = _font(15), _font(12)
    y_min = _floor(table)
    left, bottom, height = MARGIN, top + PANEL_H - 45, PANEL_H - 90
    right = left + PANEL_W - MARGIN - 20
    draw.text((left, top + 8), f"Mean Dice (LV, MYO, RV) on {name}", fill="black", font=font)
    step = 0.05 if Y_MAX - y_min <= 0.5 else 0.1
    for tick in np.arange(y_min, Y_MAX + 1e-9, step):
        y = bottom - (tick - y_min) / (Y_MAX - y_min) * height
        draw.line((left, y, right, y), fill=(225, 225, 225))
        draw.text((left - 34, y - 7), f"{tick:.2f}", fill="black", font=small)
    arms = [a for a in ARM_COLOURS if a in table]
    pools = [p for p in POOL_ORDER if any(p in table[a] for a in arms)]
    slot = (right - left) / max(len(pools), 1)
    bar = slot * 0.8 / max(len(arms), 1)
    for i, pool in enumerate(pools):
        x0 = left + i * slot + slot * 0.1
        for j, arm in enumerate(arms):
            cell = table[arm].get(pool, {}).get("mean")
            if cell is None:
                continue
            mean, sd = cell["mean"], cell["sd"]
            xa, xb = x0 + j * bar, x0 + (j + 1) * bar - 2
            y = bottom - (max(mean, y_min) - y_min) / (Y_MAX - y_min) * height
            draw.rectangle((xa, y, xb, bottom), fill=ARM_COLOURS[arm])
            xm = (xa + xb) / 2
            y_hi = bottom - (min(mean + sd, Y_MAX) - y_min) / (Y_MAX - y_min) * height
            y_lo = bottom - (max(mean - sd, y_min) - y_min) / (Y_MAX - y_min) * height
            draw.line((xm, y_hi, xm, y_lo), fill="black", width=1)
        draw.text((x0, bottom + 6), pool, fill="black", font=small)
    draw.line((left, bottom, right, bottom), fill="black")


def write_plot(path: Path, tables: Mapping[str, Mapping[str, Any]], arm_names: Mapping) -> Path:
    """A PNG with one panel per test set and a legend of the arms; returns ``path``."""
    shown = [a for a in ARM_COLOURS if any(a in t for t in tables.values())]
    top = max(MARGIN, 18 * len(shown) + 18)  # the legend's rows above the first panel
    height = top + len(tables) * PANEL_H + 30
    image = Image.new("RGB", (PANEL_W, height), "white")
    draw = ImageDraw.Draw(image)
    y = 10
    for arm in shown:
        colour = ARM_COLOURS[arm]
        draw.rectangle((20, y + 2, 34, y + 14), fill=colour)
        draw.text((42, y), f"({arm}) {arm_names[arm]}", fill="black", font=_font(13))
        y += 18
    for k, (name, table) in enumerate(tables.items()):
        _panel(draw, top + k * PANEL_H, name, table)
    draw.text(
        (20, height - 22),
        "bars: mean over seeds; whiskers: +- SD; the axis starts above 0",
        fill="black",
        font=_font(12),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
    return path


LABEL_COLOURS = np.array([(0, 0, 0), (220, 60, 60), (60, 200, 60), (60, 110, 230)], np.float32)


def write_samples(path: Path, rows: Mapping[str, Any], n: int = 8) -> Path:
    """A PNG grid: per named slice set, ``n`` images (top) and their labels over them (below).

    The slices shown are the ``n`` with the most heart, taken evenly across each set.
    """
    tiles = []
    for slices in rows.values():
        area = (slices.labels > 0).reshape(len(slices), -1).sum(axis=1)
        busy = np.flatnonzero(area >= np.quantile(area, 0.5))
        pick = busy[np.linspace(0, len(busy) - 1, min(n, len(busy))).round().astype(int)]
        grey = ((slices.images[pick] + 1.0) * 127.5).clip(0, 255)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
        colour = LABEL_COLOURS[slices.labels[pick]]
        mask = (slices.labels[pick] > 0)[..., None]
        overlay = np.where(mask, 0.55 * rgb + 0.45 * colour, rgb)
        tiles.append(np.concatenate(list(rgb), axis=1))
        tiles.append(np.concatenate(list(overlay), axis=1))
    width = max(t.shape[1] for t in tiles)
    grid = np.concatenate(
        [np.pad(t, ((0, 2), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(grid.astype(np.uint8)).save(tmp, format="PNG")
    tmp.replace(path)
    return path
