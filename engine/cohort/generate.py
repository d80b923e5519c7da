"""One synthetic subject from a seed: conditions -> targets -> heart -> 3D+t labels and images.

Every subject draws from its own ``np.random.SeedSequence`` child, so a subject depends only on
the cohort seed and its index (never on the worker count or on the other subjects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from cardio_explorer.engine.cohort.anatomy import FrameState, HeartModel
from cardio_explorer.engine.cohort.conditions import sample_conditions
from cardio_explorer.engine.cohort.grid import (
    DENSE_GRID,
    DENSE_SPACING,
    SAX_MATRIX,
    SAX_SLICES,
    Grid,
    dense_grid,
    inplane_angle,
    sax_grid,
)
from cardio_explorer.engine.cohort.imaging import Scanner, normalise
from cardio_explorer.engine.cohort.motion import ejected_fraction_curve, es_frame_for
from cardio_explorer.engine.cohort.physiology import Targets, sample_targets
from cardio_explorer.engine.cohort.shape import HeartShape, sample_shape
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.limits import (
    MAX_FRAMES,
    MAX_GENERATED_VOXELS,
    MAX_GRID_SIDE,
    MAX_MISALIGNMENT_MM,
    MAX_PLAN_VOXELS,
    MAX_SEED,
    MAX_SUBJECTS,
    SPACING_MM,
    check_count,
    check_real,
    check_voxels,
)
from cardio_explorer.engine.metrics.phenotypes import (
    MYOCARDIUM_DENSITY_G_PER_ML,
    Phenotypes,
    max_wall_thickness_mm,
    measure_phenotypes,
)
from cardio_explorer.engine.subject import GROUPS, Conditions, Subject
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

Geometry = Literal["sax", "dense"]

_MAX_LV_LENGTH_MM = 118.0
# Smallest dense field of view (z, in-plane) that holds a dilated heart with its RV.
_MIN_DENSE_FOV_MM = (110.0, 140.0)
_LARGEST_SAX = (SAX_SLICES[1], SAX_MATRIX[1], SAX_MATRIX[1])


@dataclass(frozen=True)
class CohortConfig:
    """What to generate: size, seed, grid, group mix, cycle length, slice misalignment."""

    n: int = 200
    seed: int = 7
    geometry: Geometry = "sax"
    groups: dict[str, float] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0.2))
    n_frames: int = 20
    misalignment_mm: float = 0.0
    dense_shape: tuple[int, int, int] = DENSE_GRID
    dense_spacing: tuple[float, float, float] = DENSE_SPACING
    images: bool = True

    def __post_init__(self) -> None:
        check_count("--n", self.n, 1, MAX_SUBJECTS)
        check_count("--seed", self.seed, 0, MAX_SEED)
        if self.geometry not in ("sax", "dense"):
            raise CardioInputError("--geometry", f"must be 'sax' or 'dense', got {self.geometry!r}")
        check_count("--frames", self.n_frames, 2, MAX_FRAMES)
        check_real("--misalignment", self.misalignment_mm, 0.0, MAX_MISALIGNMENT_MM)
        self._check_sizes()
        if self.misalignment_mm > 0 and self.geometry != "sax":
            raise CardioInputError(
                "--misalignment", "applies to short-axis stacks (--geometry sax)"
            )
        unknown = sorted(set(self.groups) - set(GROUPS))
        if unknown:
            raise CardioInputError("--groups", f"unknown groups {unknown}; expected {GROUPS}")
        if not self.groups or any(v < 0 for v in self.groups.values()):
            raise CardioInputError("--groups", "shares must be non-negative")
        if sum(self.groups.values()) <= 0:
            raise CardioInputError("--groups", "at least one group needs a positive share")
        if self.geometry == "dense":
            fov = [n * d for n, d in zip(self.dense_shape, self.dense_spacing, strict=True)]
            if fov[0] < _MIN_DENSE_FOV_MM[0] or min(fov[1:]) < _MIN_DENSE_FOV_MM[1]:
                raise CardioInputError(
                    "--grid/--spacing",
                    f"field of view {fov[2]:g} x {fov[1]:g} x {fov[0]:g} mm (x, y, z) cannot hold "
                    f"a heart; need at least {_MIN_DENSE_FOV_MM[1]:g} mm in-plane and "
                    f"{_MIN_DENSE_FOV_MM[0]:g} mm along z",
                )

    def _check_sizes(self) -> None:
        """Grid, spacing and the cohort's voxels, computed before anything is allocated."""
        for side in self.dense_shape:
            check_count("--grid", side, 1, MAX_GRID_SIDE)
        for mm in self.dense_spacing:
            check_real("--spacing", mm, *SPACING_MM)
        if len(self.dense_shape) != 3 or len(self.dense_spacing) != 3:
            raise CardioInputError("--grid/--spacing", "need three values each (Z,Y,X)")
        grid = self.dense_shape if self.geometry == "dense" else _LARGEST_SAX
        flag = "--grid" if self.geometry == "dense" else "--frames"
        check_voxels(flag, (*grid, self.n_frames), MAX_GENERATED_VOXELS)
        total = self.n * self.n_frames * math.prod(grid)
        if total > MAX_PLAN_VOXELS:
            raise CardioInputError(
                "--n", f"{self.n:,} subjects make {total:,} voxels; at most {MAX_PLAN_VOXELS:,}"
            )


@dataclass(eq=False)
class SyntheticSubject:
    """A generated subject: 3D+t labels (memory convention) and images, plus its ground truth."""

    subject_id: str
    group: str
    conditions: Conditions
    targets: Targets
    shape: HeartShape
    ed_frame: int
    es_frame: int
    labels: LabelVolume
    images: ImageVolume | None
    phenotypes: Phenotypes
    states: list[FrameState]

    @property
    def myo_volume_ml(self) -> np.ndarray:
        """Myocardial volume of each frame (mL)."""
        counts = (self.labels.data == Label.MYO).reshape(self.labels.n_frames, -1).sum(axis=1)
        return counts * self.labels.voxel_volume_ml

    def to_subject(self) -> Subject:
        """As an engine :class:`Subject` with every frame (0-based)."""
        n = self.labels.n_frames
        return Subject(
            subject_id=self.subject_id,
            group=self.group,
            conditions=self.conditions,
            ed_frame=self.ed_frame,
            es_frame=self.es_frame,
            n_frames=n,
            labels={t: self.labels.frame(t) for t in range(n)},
            images={} if self.images is None else {t: self.images.frame(t) for t in range(n)},
            info={"layout": "synthetic"},
        )


def subject_id(index: int, n: int) -> str:
    """ACDC-style id of the index-th subject (0-based): patient001, patient002, ..."""
    return f"patient{index + 1:0{max(3, len(str(n)))}d}"


def assign_groups(config: CohortConfig) -> list[str]:
    """Group of every subject: exact counts by largest remainder, order shuffled by the seed."""
    names = [g for g in GROUPS if config.groups.get(g, 0) > 0]
    shares = np.array([config.groups[g] for g in names], dtype=float)
    exact = shares / shares.sum() * config.n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: config.n - counts.sum()]:
        counts[i] += 1
    order = np.repeat(np.arange(len(names)), counts)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(1)[0])
    rng.shuffle(order)
    return [names[i] for i in order]


def subject_seeds(config: CohortConfig) -> list[np.random.SeedSequence]:
    """One independent seed sequence per subject (child i + 1 of the cohort seed)."""
    return np.random.SeedSequence(config.seed).spawn(config.n + 1)[1:]


def synthesize_subject(
    sid: str, group: str, seed: np.random.SeedSequence, config: CohortConfig
) -> SyntheticSubject:
    """Generate one subject (labels and, if configured, images) in memory."""
    rng = np.random.default_rng(seed)
    conditions = sample_conditions(group, rng)
    targets = sample_targets(group, conditions, rng)
    longest = _MAX_LV_LENGTH_MM
    if config.geometry == "dense":
        # The apex (LV length plus up to 10 mm of wall) must stay on the dense grid.
        longest = min(longest, config.dense_shape[0] * config.dense_spacing[0] * 0.92 - 10.0)
    shape = sample_shape(group, targets.lvedv_ml, targets.lvef, rng, max_length_mm=longest)
    if config.geometry == "sax":
        grid = sax_grid(rng, shape.apex_depth_mm, 0.0, config.misalignment_mm)
    else:
        grid = dense_grid(rng, shape.apex_depth_mm, config.dense_shape, config.dense_spacing)
    grid = replace(grid, inplane_rad=inplane_angle(rng))
    heart_rate = float(rng.uniform(55.0, 90.0))
    frame_ms = 60_000.0 / heart_rate / config.n_frames
    es_frame = es_frame_for(config.n_frames, rng)
    ejected = ejected_fraction_curve(config.n_frames, es_frame)

    voxel = grid.voxel_ml
    n_myo = round(targets.lvm_g / MYOCARDIUM_DENSITY_G_PER_ML / voxel)
    lv_counts = _counts(targets.lvedv_ml, targets.lvesv_ml, ejected, voxel)
    rv_counts = _counts(targets.rvedv_ml, targets.rvesv_ml, ejected, voxel)
    for attempt in range(3):
        model = HeartModel(grid, shape)
        affine = grid.affine
        model.calibrate(lv_counts[0], n_myo, targets.max_wall_mm, _wall_meter(affine))
        model.focus(rv_counts[0], detail=config.images)
        if config.geometry == "sax" or attempt == 2:
            break  # short-axis stacks keep the heart off-centre, as scans do
        offset = _heart_offset_mm(grid, model.heart_box)
        if max(abs(v) for v in offset) < 2.0 * max(grid.spacing_zyx[1:]):
            break
        # Dense grids centre the heart so that a large RV stays inside the field of view.
        ox, oy, oz = grid.origin_xyz
        grid = replace(grid, origin_xyz=(ox + offset[0], oy + offset[1], oz))

    scanner = Scanner(grid, shape, conditions, rng) if config.images else None
    labels = np.empty((config.n_frames, *grid.shape), np.uint8)
    images = np.empty((config.n_frames, *grid.shape), np.float32) if scanner else None
    states = []
    descent = shape.long_shortening * shape.lv_length_mm
    for t in range(config.n_frames):
        frame = model.frame(
            descent * ejected[t], lv_counts[t], n_myo, rv_counts[t], systole=float(ejected[t])
        )
        labels[t] = frame.labels
        states.append(frame.state)
        if scanner is not None:
            images[t] = scanner.image(frame.tissue, model.window)

    label_vol = LabelVolume(data=labels, affine=affine, frame_duration_ms=frame_ms, name=sid)
    image_vol = None
    if images is not None:
        image_vol = ImageVolume(
            data=normalise(images, rng), affine=affine, frame_duration_ms=frame_ms, name=sid
        )
    phenotypes = measure_phenotypes(label_vol.frame(0), label_vol.frame(es_frame))
    return SyntheticSubject(
        subject_id=sid,
        group=group,
        conditions=conditions,
        targets=targets,
        shape=shape,
        ed_frame=0,
        es_frame=es_frame,
        labels=label_vol,
        images=image_vol,
        phenotypes=phenotypes,
        states=states,
    )


def _wall_meter(affine: np.ndarray):
    """Maximum wall thickness (mm) of a label array on the grid with this affine."""

    def wall(labels: np.ndarray) -> float:
        # the calibration's own meter: the plain maximum, as the anatomy model was fitted with
        return max_wall_thickness_mm(LabelVolume(data=labels, affine=affine), corroborated=False)

    return wall


def _heart_offset_mm(grid: Grid, box: tuple[int, int, int, int] | None) -> tuple[float, float]:
    """World (x, y) shift from the grid's in-plane centre to the heart's bounding-box centre."""
    if box is None:
        return (0.0, 0.0)
    y0, y1, x0, x1 = box
    _, dy, dx = grid.spacing_zyx
    ny, nx = grid.shape[1:]
    return ((x0 + x1 - (nx - 1)) / 2 * dx, (y0 + y1 - (ny - 1)) / 2 * dy)


def _counts(edv_ml: float, esv_ml: float, ejected: np.ndarray, voxel_ml: float) -> list[int]:
    """Voxel count of a cavity at every frame from its volume curve."""
    volumes = edv_ml - (edv_ml - esv_ml) * ejected
    return [max(1, round(v / voxel_ml)) for v in volumes]
