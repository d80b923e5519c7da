"""The whole utility evaluation: scarce set -> generative models -> arms x seeds -> report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import Checkpoint
from cardio_explorer.engine.spade.config import SpadeConfig
from cardio_explorer.engine.spade.data import ImageLabelSlices
from cardio_explorer.engine.spade.segmenter import SegmenterSettings
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.utility import stats
from cardio_explorer.engine.utility.arms import (
    ARM_NAMES,
    ARMS,
    COMBINED_ARM,
    arm_slices,
    run_arm,
)
from cardio_explorer.engine.utility.augment import AugmentSettings, augment_slices
from cardio_explorer.engine.utility.data import (
    TestSet,
    group_of,
    join_slices,
    preprocess_all,
    resize_slices,
)
from cardio_explorer.engine.utility.synthetic import (
    SynthesisSettings,
    scarce_image_slices,
    synthesise_cases,
    train_scarce_label_vae,
    train_scarce_spade,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UtilitySettings:
    """Grid, segmenter and seeds of one evaluation (the generative parts in ``synthesis``)."""

    size: int = 128
    spacing_mm: float = 1.5
    seg_size: int = 96
    steps: int = 600
    batch_size: int = 16
    lr: float = 2e-3
    base: int = 16
    lr_schedule: str = "cosine"
    seeds: tuple[int, ...] = (0, 1, 2)
    combined: bool = False  # also arm (d): real + augmentation + synthetic
    synthesis: SynthesisSettings = field(default_factory=SynthesisSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)

    def __post_init__(self) -> None:
        if len(self.seeds) < 1 or len(set(self.seeds)) != len(self.seeds):
            raise CardioInputError("--seeds", f"need distinct seeds, got {list(self.seeds)}")
        if self.seg_size % 8 or self.seg_size < 8:
            raise CardioInputError("--seg-size", f"must be a multiple of 8, got {self.seg_size}")

    @property
    def arms(self) -> tuple[str, ...]:
        """The arms this evaluation trains, in report order."""
        return (*ARMS, COMBINED_ARM) if self.combined else ARMS

    def segmenter(self, seed: int) -> SegmenterSettings:
        """The segmenter settings of one seed (the same for every arm)."""
        return SegmenterSettings(
            self.steps, self.batch_size, self.lr, self.base, seed, self.lr_schedule
        )


def evaluate_utility(
    scarce: Sequence[Subject],
    tests: Sequence[TestSet],
    settings: UtilitySettings,
    device: torch.device,
    *,
    spade_init: Checkpoint | None,
    spade_config: SpadeConfig,
    threads: int | None = None,
    progress: bool = False,
    say: Callable[[str], None] = log.info,
    on_slices: Callable[[dict[str, ImageLabelSlices]], None] | None = None,
) -> dict[str, Any]:
    """Run every arm for every seed on every test set; the report's JSON body.

    ``on_slices`` receives the real, augmented and synthetic slices before the segmenters train
    (e.g. to draw examples of each).
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    synth = settings.synthesis
    train = preprocess_all(scarce, settings.size, settings.spacing_mm)
    tests = [
        TestSet(
            t.name,
            t.folder,
            preprocess_all(t.subjects, settings.size, settings.spacing_mm),
            t.skipped_without_images,
        )
        for t in tests
    ]
    real = scarce_image_slices(train, settings.size)
    lap("read_and_preprocess_s")
    say(f"label VAE on {len(train)} scarce subjects ({synth.vae_epochs} epochs)")
    vae, atlas, vae_info = train_scarce_label_vae(train, synth, device, threads, progress)
    lap("label_vae_s")
    say(f"SPADE on {len(real)} scarce slices ({synth.spade_epochs} epochs)")
    spade, spade_info = train_scarce_spade(real, spade_init, spade_config, synth, device, progress)
    lap("spade_s")
    cases = synthesise_cases(vae, atlas, spade, train, synth, device, progress)
    lap("synthesis_s")
    say(f"{cases.n_volumes} synthetic volumes ({len(cases.slices)} slices); augmenting as many")
    augmented = augment_slices(real, len(cases.slices), settings.augment, synth.seed, progress)
    lap("augmentation_s")
    if on_slices is not None:
        on_slices({"real": real, "augmented (b)": augmented, "synthetic (c)": cases.slices})
    seg = {
        "a": resize_slices(arm_slices(real, None), settings.seg_size),
        "b": resize_slices(arm_slices(real, augmented), settings.seg_size),
        "c": resize_slices(arm_slices(real, cases.slices), settings.seg_size),
    }
    if settings.combined:
        both = join_slices([augmented, cases.slices], [1, 1])
        seg[COMBINED_ARM] = resize_slices(arm_slices(real, both), settings.seg_size)
    records: dict[str, dict[str, list[list[dict[str, Any]]]]] = {t.name: {} for t in tests}
    losses: dict[str, list[float]] = {}
    for arm in settings.arms:
        for seed in settings.seeds:
            say(f"arm ({arm}) seed {seed}: {settings.steps} steps on {len(seg[arm])} slices")
            scores, loss = run_arm(
                arm, seg[arm], tests, settings.segmenter(seed), settings.seg_size, device, progress
            )
            losses.setdefault(arm, []).append(round(loss, 4))
            for name, volumes in scores.items():
                records[name].setdefault(arm, []).append(volumes)
    lap("segmenters_s")
    test_reports: dict[str, Any] = {}
    targets: dict[str, Any] = {}
    for test in tests:
        table = stats.dice_table(records[test.name])
        delta = stats.deltas(table)
        test_reports[test.name] = {
            "folder": test.folder,
            "subjects": [s.subject_id for s in test.subjects],
            "groups": _count_groups(test.subjects),
            "skipped_without_images": test.skipped_without_images,
            "n_volumes": len(records[test.name]["a"][0]),
            "dice": table,
            "delta": delta,
            "deltas": stats.flat_deltas(delta),
            "paired_tests": stats.paired_tests(records[test.name]),
            "volumes": records[test.name],
        }
        if delta.get("c_minus_a", {}).get("pathological") is not None:
            targets.update(stats.targets(delta, test.name))
    return {
        "arms": {arm: ARM_NAMES[arm] for arm in settings.arms},
        "scarce": {
            "subjects": [s.subject_id for s in train],
            "groups": _count_groups(train),
            "real_slices": len(real),
        },
        "slices_per_arm": {arm: len(s) for arm, s in seg.items()},
        "synthetic": {
            "volumes": cases.n_volumes,
            "slices": len(cases.slices),
            "volumes_per_target": cases.per_target,
            **cases.provenance,
        },
        "models": {"label_vae": vae_info, "spade": spade_info},
        "augmentation": settings.augment.to_json(),
        "segmenter": {
            "architecture": f"TinyUNet(base={settings.base}, depth=3), 2D",
            "steps": settings.steps,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "lr_schedule": settings.lr_schedule,
            "seeds": list(settings.seeds),
            "grid": f"{settings.seg_size} x {settings.seg_size}, scored on the "
            f"{settings.size} x {settings.size} grid at {settings.spacing_mm} mm",
            "final_loss": losses,
        },
        "settings": {**asdict(settings), "synthesis": synth.to_json()},
        "test_sets": test_reports,
        "targets": targets,
        "passed": bool(targets) and all(t["pass"] for t in targets.values()),
        "timings": timings,
    }


def _count_groups(subjects: Sequence[Subject]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in subjects:
        out[group_of(s)] = out.get(group_of(s), 0) + 1
    return out
