"""4D sequences: CHeart heartbeats for a grid of conditions or a conditions CSV, with images.

A case is one condition set at one seed; a unit is one condition set at every seed (decoded in
one batch, so any split of the work writes the same labels). Each case is a 4D NIfTI of labels
(time last, the frame duration in pixdim[4]) and, with images, SPADE's image of every frame on
the generator's grid (1.5 mm in-plane, 128 x 128; the labels are then written on that grid too,
so the two align), laid out flat, as ACDC patient folders or as nnU-Net 3D cases
(``sequence_files``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cardio_explorer.engine.cheart.conditions import CONDITION_NAMES, NUMERIC, parse_sex
from cardio_explorer.engine.cheart.draws import drawn_hearts, prior_draw
from cardio_explorer.engine.cheart.groups import group_index, model_groups, parse_group
from cardio_explorer.engine.cheart.inference import (
    decode_from_z,
    end_systolic_frame,
    sequence_phenotypes,
)
from cardio_explorer.engine.cheart.model import CHeartModel
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.cases import spade_images
from cardio_explorer.engine.factory.layouts import write_nnunet_json
from cardio_explorer.engine.factory.morphs import MANIFEST_PHENOTYPES, check_seeds
from cardio_explorer.engine.factory.sequence_files import (
    check_sequence_output,
    sequence_files,
    sequence_info,
)
from cardio_explorer.engine.factory.writers import WrittenCase
from cardio_explorer.engine.io.acdc import acdc_group
from cardio_explorer.engine.io.generic import read_conditions_csv
from cardio_explorer.engine.io.safe_paths import check_safe_id
from cardio_explorer.engine.limits import MAX_PLAN_CASES
from cardio_explorer.engine.preprocess import DEFAULT_SPACING_MM, crop_or_pad, resample_inplane
from cardio_explorer.engine.spade.network import SpadeModel
from cardio_explorer.engine.subject import Conditions
from cardio_explorer.engine.volume import LabelVolume

SEQUENCE_COLUMNS = (
    "case_index",
    "case",
    "group",
    *CONDITION_NAMES,
    "seed",
    "style_seed",
    "file_labels",
    "file_images",
    "n_frames",
    "frame_duration_ms",
    "es_frame",
    *MANIFEST_PHENOTYPES,
    "warnings",
    "label_values",
    "precision",
    "plan_sha256",
    "cheart_sha256",
    "spade_sha256",
)


def parse_grid(text: str) -> dict[str, tuple[Any, ...]]:
    """'age=30,50,70;sex=F,M;sbp=120' -> {name: values}; one clear error for a bad spec."""
    grid: dict[str, tuple[Any, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, eq, values = part.partition("=")
        name = name.strip().lower()
        if not eq or name not in CONDITION_NAMES:
            raise CardioInputError(
                "--conditions-grid", f"{part!r}: expected NAME=V1,V2 with NAME in {CONDITION_NAMES}"
            )
        if name in grid:
            raise CardioInputError("--conditions-grid", f"{name} given twice")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not items:
            raise CardioInputError("--conditions-grid", f"{name} has no value")
        try:
            grid[name] = tuple(parse_sex(v) if name == "sex" else float(v) for v in items)
        except (ValueError, CardioInputError):
            raise CardioInputError(
                "--conditions-grid", f"{name}: bad value in {values!r}"
            ) from None
    return grid


@dataclass(frozen=True)
class SequencePlan:
    """Condition sets (named) x seeds, resolved against a CHeart model's statistics."""

    names: tuple[str, ...]
    conditions: tuple[Conditions, ...]
    seeds: tuple[int, ...]
    images: bool = False
    labels: str = "acdc"
    source: str = ""  # the grid spec or CSV path, for plan.toml
    layout: str = "flat"
    frames: str = "all"  # nnunet: every frame, or "ed-es"
    # the prior component (group) per condition set, None: drawn from p(group | conditions);
    # () -> all drawn
    groups: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        check_sequence_output(self.layout, self.images, self.frames)

    def group(self, unit: int) -> str | None:
        """The group condition set ``unit`` is generated from (None: drawn per seed)."""
        return self.groups[unit] if self.groups else None

    @classmethod
    def from_grid(
        cls,
        model: CHeartModel,
        grid: dict[str, tuple[Any, ...]],
        seeds: tuple[int, ...],
        group: str | None = None,
        **kw: Any,
    ) -> SequencePlan:
        """Every combination of the grid's values; conditions not given: the training means
        of each sex (both sexes when sex is not given); all from ``group`` (None: drawn)."""
        sexes = grid.get("sex", ("F", "M"))
        count = len(sexes) * int(np.prod([len(grid.get(n, (0,))) for n in NUMERIC]))
        _check_size(count, len(seeds))
        conditions = []
        for sex in sexes:
            means = model.stats.typical(sex)
            axes = [grid.get(n, (getattr(means, n),)) for n in NUMERIC]
            for values in itertools.product(*axes):
                conditions.append(
                    model.stats.typical(sex, **dict(zip(NUMERIC, values, strict=True)))
                )
        names = tuple(f"c{i:04d}" for i in range(len(conditions)))
        spec = ";".join(f"{n}={','.join(map(str, v))}" for n, v in grid.items())
        group = parse_group(group)
        kw.setdefault("groups", () if group is None else (group,) * len(conditions))
        return cls(names, tuple(conditions), tuple(check_seeds(seeds)), source=spec, **kw)

    @classmethod
    def from_csv(
        cls, path: str | Path, seeds: tuple[int, ...], group: str | None = None, **kw: Any
    ) -> SequencePlan:
        """One condition set per row of a conditions CSV (subject, age, sex, height, weight,
        sbp; optional group), named by its subject column; a row without a group takes
        ``group`` (None: drawn)."""
        group = parse_group(group)
        table = read_conditions_csv(path)
        if not table:
            raise CardioInputError(path, "no rows with a subject id")
        _check_size(len(table), len(seeds))
        names, conditions, groups = [], [], []
        for sid, row in table.items():
            check_safe_id(sid, f"{path}: subject id")  # it names the files
            missing = [n for n in CONDITION_NAMES if row.get(n) is None]
            if missing:
                raise CardioInputError(f"{path}: {sid}", f"missing {', '.join(missing)}")
            names.append(sid)
            conditions.append(Conditions(**{n: row[n] for n in CONDITION_NAMES}))
            code = row.get("group_code")
            groups.append(group if code is None else acdc_group(str(code), f"{path}: {sid}"))
        kw.setdefault("groups", tuple(groups) if set(groups) != {None} else ())
        return cls(
            tuple(names), tuple(conditions), tuple(check_seeds(seeds)), source=str(path), **kw
        )


def _check_size(n_conditions: int, n_seeds: int) -> None:
    if n_conditions * n_seeds > MAX_PLAN_CASES:
        raise CardioInputError(
            "seeds",
            f"{n_conditions:,} condition sets x {n_seeds} seeds = {n_conditions * n_seeds:,} "
            f"sequences; at most {MAX_PLAN_CASES:,} per run",
        )


class SequenceWork:
    """A sequence plan as a run's work (see ``factory.run.Work``)."""

    columns = SEQUENCE_COLUMNS

    def __init__(
        self,
        plan: SequencePlan,
        model: CHeartModel,
        spade: SpadeModel | None,
        common: dict[str, Any],
    ) -> None:
        self.plan, self.model, self.spade = plan, model, spade
        for unit in range(len(plan.conditions)):  # before any work: the model has each group
            try:
                group_index(model, plan.group(unit))
            except CardioInputError as error:
                raise CardioInputError(
                    f"{plan.names[unit]}: {error.thing}", error.problem
                ) from None
        self.labels = plan.labels
        self.n_cases = len(plan.conditions) * len(plan.seeds)
        keys = ("precision", "cheart_sha256", "spade_sha256")
        self.common = {k: common.get(k, "") for k in keys}
        text = json.dumps(
            {
                "names": plan.names,
                "conditions": [c.as_dict() for c in plan.conditions],
                "seeds": plan.seeds,
                "images": plan.images,
                "labels": plan.labels,
                "layout": plan.layout,
                "frames": plan.frames,
                "groups": plan.groups,
            },
            sort_keys=True,
        )
        self.sha256 = hashlib.sha256(text.encode()).hexdigest()

    def to_toml(self) -> str:
        """A record of the plan (conditions come from the grid or CSV named here)."""
        p = self.plan
        return (
            f"# cardio-explorer sequence plan ({self.n_cases:,} sequences)\n\n[sequences]\n"
            f"conditions = {json.dumps(p.source)}\nseeds = {list(p.seeds)}\n"
            f"images = {'true' if p.images else 'false'}\nlabels = {json.dumps(p.labels)}\n"
            f"layout = {json.dumps(p.layout)}\nframes = {json.dumps(p.frames)}\n"
            f"groups = {json.dumps([g or 'any' for g in p.groups] or 'any')}\n"
        )

    def units_of(self, rank: int, world: int) -> Iterator[int]:
        """Condition sets rank ``rank`` of ``world`` takes."""
        return iter(range(rank, len(self.plan.conditions), world))

    def cases_of(self, unit: int) -> range:
        """The seeds of condition set ``unit``, as case indices."""
        n = len(self.plan.seeds)
        return range(unit * n, (unit + 1) * n)

    def style_seed(self, index: int) -> int:
        """SPADE style seed of a case: from the plan and the case index only."""
        digest = hashlib.sha256(f"{self.sha256}:{index}:style".encode()).digest()
        return int.from_bytes(digest[:4], "little")

    def compute(self, unit: int, wanted: set[int]) -> list[WrittenCase]:
        """Every seed of the unit decoded in one batch; the wanted ones made ready to write."""
        p, model = self.plan, self.model
        c = p.conditions[unit]
        z, motion, codes, groups = [], [], [], []
        asked = group_index(model, p.group(unit))
        names = model_groups(model)
        for seed in p.seeds:
            draw = prior_draw(model, 1, seed)
            hearts = drawn_hearts(model, draw, [c], None if asked is None else np.array([asked]))
            z.append(hearts.z0)
            motion.append(draw.motion)
            codes.append(hearts.motion_codes)
            # the component used names the case's group; a model without groups: NOR, as before
            groups.append(names[int(hearts.components[0])] if names else "NOR")
        labels, _ = decode_from_z(
            model,
            np.concatenate(z),
            [c] * len(p.seeds),
            motion_noise=np.concatenate(motion),
            motion_codes=None if codes[0] is None else np.concatenate(codes),
        )
        out = []
        for k, index in enumerate(self.cases_of(unit)):
            if index not in wanted:
                continue
            sequence = LabelVolume(
                data=labels[k],
                affine=model.grid_affine(),
                frame_duration_ms=model.frame_duration_ms,
                name=f"{p.names[unit]} seed {p.seeds[k]}",
            )
            out.append(self._case(unit, index, p.seeds[k], sequence, groups[k]))
        return out

    def _case(
        self, unit: int, index: int, seed: int, sequence: LabelVolume, group: str
    ) -> WrittenCase:
        p = self.plan
        case = f"{p.names[unit]}_s{seed}"
        style = image = None
        if p.images and self.spade is not None:
            size = self.spade.config.image_size
            sequence = crop_or_pad(resample_inplane(sequence, DEFAULT_SPACING_MM), size=size)
            style = self.style_seed(index)
            frames = [sequence.frame(t) for t in range(sequence.n_frames)]
            made = spade_images(self.spade, frames, style, self.model.device, 64)
            image = sequence_image(sequence, np.stack([m.data for m in made]))
        # ES of the labels as written (on the image grid when resampled), as Info.cfg says it
        es = end_systolic_frame(sequence)
        tasks, files, folders = sequence_files(p.layout, case, sequence, image, es, p.frames)
        measured = sequence_phenotypes(sequence, wall=True)
        c = p.conditions[unit]
        beside = None
        if p.layout == "acdc":
            beside = sequence_info(case, group, c, sequence.n_frames, es)
        row: dict[str, Any] = {
            "case_index": index,
            "case": case,
            "group": group,
            **c.as_dict(),
            "seed": seed,
            "style_seed": "" if style is None else style,
            **files,
            "n_frames": sequence.n_frames,
            "frame_duration_ms": round(float(sequence.frame_duration_ms or 0.0), 3),
            "es_frame": es,
            **{n: round(float(measured[n]), 3) for n in MANIFEST_PHENOTYPES},
            "warnings": " | ".join(self.model.stats.out_of_range(c)),
            "label_values": p.labels,
            "plan_sha256": self.sha256,
            **self.common,
        }
        return WrittenCase(index, tasks, row, folders, beside)

    def finish(self, out: Path, n_rows: int) -> None:
        """nnU-Net's dataset.json (numTraining: the frames on disk) when the layout needs it."""
        if self.plan.layout == "nnunet":
            write_nnunet_json(out, self.labels == "acdc", "cardiac cycle frames (CHeart)")

    def record(self) -> dict[str, Any]:
        """The plan's fields for provenance.json."""
        p = self.plan
        return {
            "conditions": p.source,
            "n_condition_sets": len(p.conditions),
            "seeds": list(p.seeds),
            "images": p.images,
            "layout": p.layout,
            "frames": p.frames,
        }


def sequence_image(labels: LabelVolume, data: np.ndarray) -> Any:
    """An image volume with the labels' grid and frame duration."""
    from cardio_explorer.engine.volume import ImageVolume

    return ImageVolume(
        data=data.astype(np.float32),
        affine=labels.affine,
        frame_duration_ms=labels.frame_duration_ms,
        name=labels.name,
    )
