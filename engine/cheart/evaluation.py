"""Evaluation of a CHeart model on held-out sequences, mirroring the paper's Tables I-IV.

- completion: Dice / HD / ASSD per structure of sequences completed from their ED frame, for
  the model and for the PCA baseline;
- generation: ``n_generated`` sequences per held-out subject from its conditions, compared to
  its real sequence: mean over samples and best of them (best Dice, smallest HD, smallest ASSD);
- phenotypes: differences generated/completed - real (LVEDV, LVESV, LVEF, RVEDV, RVESV, LVM),
  and ``completion.lvesv_mae_ml`` / ``rvesv_mae_ml`` / ``lvef_mae`` from them;
- distributions: KL and Wasserstein distance between generated and real phenotypes;
- ``generation.lvef``, ``effects`` (age and sex on LVEDV and LV mass) and ``topology`` (LV blood
  pool enclosed): engine/cheart/summaries.py;
- targets: issue 19's pass/fail criteria (engine/cheart/targets.py).
All comparisons are on the model grid (real sequences resampled with nearest neighbour).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cardio_explorer.engine.cheart.baseline import PCABaseline
from cardio_explorer.engine.cheart.data import SequenceSet
from cardio_explorer.engine.cheart.draws import drawn_hearts, prior_draw
from cardio_explorer.engine.cheart.inference import (
    decode_from_z,
    encode_ed,
    sequence_phenotypes,
)
from cardio_explorer.engine.cheart.model import CHeartModel
from cardio_explorer.engine.cheart.summaries import effects_block, lvef_block, topology_block
from cardio_explorer.engine.cheart.targets import cohort_targets
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import STRUCTURES
from cardio_explorer.engine.metrics.distributions import kl_divergence, wasserstein_1d
from cardio_explorer.engine.metrics.overlap import dice_scores
from cardio_explorer.engine.metrics.surface import surface_distances
from cardio_explorer.engine.metrics.topology import sequence_exposed_fractions
from cardio_explorer.engine.volume import LabelVolume

COMPARED_PHENOTYPES = ("lvedv_ml", "lvesv_ml", "lvef", "rvedv_ml", "rvesv_ml", "lvm_g")


@dataclass(frozen=True)
class EvaluationSettings:
    """n_generated samples per subject; surface metrics on every k-th frame (ED always)."""

    n_generated: int = 20
    completion_surface_every: int = 1
    generation_surface_every: int = 4
    baseline_components: int | None = None
    seed: int = 0
    calibrate: bool = True  # a motion-code model's sequences (engine/cheart/calibration.py)

    def __post_init__(self) -> None:
        if self.n_generated < 1:
            raise CardioInputError("--samples", f"must be at least 1, got {self.n_generated}")
        for name in ("completion_surface_every", "generation_surface_every"):
            if getattr(self, name) < 1:
                raise CardioInputError(name, "must be at least 1")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's 'mean of empty slice' warning: a missing structure is NaN on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


class _Scores:
    """Per-structure Dice, HD and ASSD of one predicted sequence against its reference."""

    def __init__(
        self, pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], surface_every: int
    ) -> None:
        self.dice = np.mean([dice_scores(p, r) for p, r in zip(pred, ref, strict=True)], axis=0)
        hd, assd = [], []
        for t in range(0, len(pred), surface_every):
            h, a = _surface_frame(pred[t], ref[t], spacing)
            hd.append(h)
            assd.append(a)
        with _quiet():
            self.hd = np.nanmean(np.array(hd), axis=0)
            self.assd = np.nanmean(np.array(assd), axis=0)


def _surface_frame(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """HD (max) and ASSD per structure of one frame; NaN where one side lacks the structure."""
    hd, assd = np.full(3, np.nan), np.full(3, np.nan)
    for i, label in enumerate(STRUCTURES.values()):
        pm, rm = pred == label, ref == label
        if not pm.any() and not rm.any():
            hd[i] = assd[i] = 0.0
            continue
        d = surface_distances(pm, rm, spacing)
        if d.pred_to_ref.size and d.ref_to_pred.size:
            hd[i] = max(d.pred_to_ref.max(), d.ref_to_pred.max())
            assd[i] = (d.pred_to_ref.sum() + d.ref_to_pred.sum()) / (
                d.pred_to_ref.size + d.ref_to_pred.size
            )
    return hd, assd


def _per_structure(values: np.ndarray) -> dict[str, float | None]:
    """Mean over subjects of [N, 3] values -> {lv, myo, rv, mean} (None when all missing)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    with _quiet():
        means = np.nanmean(values, axis=0)
    out: dict[str, float | None] = {
        name: (float(v) if np.isfinite(v) else None)
        for name, v in zip(STRUCTURES, means, strict=True)
    }
    finite = means[np.isfinite(means)]
    out["mean"] = float(finite.mean()) if finite.size == 3 else None
    return out


def _metrics_block(scores: list[_Scores]) -> dict[str, Any]:
    return {
        "dice": _per_structure(np.array([s.dice for s in scores])),
        "hd_mm": _per_structure(np.array([s.hd for s in scores])),
        "assd_mm": _per_structure(np.array([s.assd for s in scores])),
        "missing_structures": int(sum(np.isnan(s.hd).sum() for s in scores)),
    }


def _fit_baselines(
    test: SequenceSet, baseline_train: SequenceSet | None, settings: EvaluationSettings
) -> tuple[list[PCABaseline], np.ndarray, str]:
    """PCA baselines and, per test subject, which one completes it (never one fitted on it)."""
    if baseline_train is not None and len(baseline_train) >= 2:
        model = PCABaseline(settings.baseline_components).fit(baseline_train.labels)
        return [model], np.zeros(len(test), dtype=int), f"{len(baseline_train)} given sequences"
    n = len(test)
    if n < 4:
        raise CardioInputError(
            "PCA baseline", "needs training sequences (--baseline-data) or >= 4 test subjects"
        )
    order = np.random.default_rng(settings.seed).permutation(n)
    halves = [np.sort(order[: n // 2]), np.sort(order[n // 2 :])]
    fits = [PCABaseline(settings.baseline_components).fit(test.labels[h]) for h in halves]
    which = np.zeros(n, dtype=int)
    which[halves[0]] = 1  # subjects of half 0 are completed by the model fitted on half 1
    return fits, which, "2-fold cross-fitting on the test subjects"


def _phenotype_table(volumes: list[dict[str, float]]) -> dict[str, np.ndarray]:
    return {p: np.array([v[p] for v in volumes]) for p in COMPARED_PHENOTYPES}


def _differences(pred: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        p: {
            "mean_diff": float(np.mean(pred[p] - real[p])),
            "mean_abs_diff": float(np.mean(np.abs(pred[p] - real[p]))),
        }
        for p in COMPARED_PHENOTYPES
    }


def evaluate_cheart(
    model: CHeartModel,
    test: SequenceSet,
    baseline_train: SequenceSet | None = None,
    settings: EvaluationSettings | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The full report as a JSON-able dict (see the module docstring)."""
    settings = settings or EvaluationSettings()
    if len(test) == 0:
        raise CardioInputError("test cohort", "holds no subjects")
    grid = tuple(model.config.grid)
    if tuple(test.labels.shape[2:]) != grid or test.labels.shape[1] != model.config.n_frames:
        raise CardioInputError(
            "test cohort",
            f"sequences are {test.labels.shape[1:]}, the model needs "
            f"{model.config.n_frames} frames of {grid}",
        )
    spacing = tuple(model.config.spacing)
    baselines, which, baseline_note = _fit_baselines(test, baseline_train, settings)
    draws = prior_draw(model, len(test) * settings.n_generated, settings.seed)
    prior = model.prior

    completion, pca, gen_mean = [], [], []
    real_ph, completion_ph, pca_ph, gen_ph, gen_subject_mean_ph = [], [], [], [], []
    ages, male, components = [], [], []
    exposed: dict[str, list[np.ndarray]] = {"completed": [], "generated": [], "real": []}
    for i in tqdm(range(len(test)), desc="CHeart evaluation", disable=not progress):
        real = test.labels[i]
        conditions = test.conditions[i]
        affine = test.affines[i]
        real_ph.append(sequence_phenotypes(LabelVolume(data=real, affine=affine)))
        ed = LabelVolume(data=real[0], affine=affine)
        mu, _ = encode_ed(model, ed, conditions)
        completed = decode_from_z(
            model, mu[None], [conditions], real[:1], calibrate=settings.calibrate
        )[0][0]
        completion.append(_Scores(completed, real, spacing, settings.completion_surface_every))
        exposed["completed"].append(sequence_exposed_fractions(completed[1:]))
        exposed["real"].append(sequence_exposed_fractions(real))
        completion_ph.append(sequence_phenotypes(LabelVolume(data=completed, affine=affine)))
        baseline_seq = baselines[which[i]].complete(real[0])
        pca.append(_Scores(baseline_seq, real, spacing, settings.completion_surface_every))
        pca_ph.append(sequence_phenotypes(LabelVolume(data=baseline_seq, affine=affine)))

        same = [conditions] * settings.n_generated
        draw = draws.subset(i * settings.n_generated, (i + 1) * settings.n_generated)
        hearts = drawn_hearts(model, draw, same)
        if hearts.components is not None:
            components.extend(prior.groups[k] for k in hearts.components)
        generated = decode_from_z(
            model,
            hearts.z0,
            same,
            motion_noise=draw.motion,
            calibrate=settings.calibrate,
            motion_codes=hearts.motion_codes,
        )[0]
        exposed["generated"].extend(sequence_exposed_fractions(g) for g in generated)
        samples = [_Scores(g, real, spacing, settings.generation_surface_every) for g in generated]
        gen_mean.append(np.array([[s.dice, s.hd, s.assd] for s in samples]))
        phs = [sequence_phenotypes(LabelVolume(data=g, affine=affine)) for g in generated]
        gen_ph.extend(phs)
        gen_subject_mean_ph.append(
            {p: float(np.mean([v[p] for v in phs])) for p in COMPARED_PHENOTYPES}
        )
        ages.append(conditions.age)
        male.append(1.0 if conditions.is_male else 0.0)

    stacked = np.stack(gen_mean)  # [N, S, 3 metrics, 3 structures]
    with _quiet():
        mean_over_samples = np.nanmean(stacked, axis=1)
        best_dice = np.nanmax(stacked[:, :, 0], axis=1)
        best_hd = np.nanmin(stacked[:, :, 1], axis=1)
        best_assd = np.nanmin(stacked[:, :, 2], axis=1)

    real_table = _phenotype_table(real_ph)
    gen_table = _phenotype_table(gen_ph)
    n_s = settings.n_generated
    distributions = {
        p: {
            "kl": kl_divergence(gen_table[p], real_table[p]),
            "wasserstein": wasserstein_1d(gen_table[p], real_table[p]),
            "generated_mean": float(gen_table[p].mean()),
            "real_mean": float(real_table[p].mean()),
        }
        for p in COMPARED_PHENOTYPES
    }
    completion_errors = _differences(_phenotype_table(completion_ph), real_table)
    model_metrics = _metrics_block(completion)
    completion_block = {
        "n_subjects": len(test),
        # the keys; the same figures as model.dice and phenotypes.completion
        "dice": model_metrics["dice"],
        "lvesv_mae_ml": completion_errors["lvesv_ml"]["mean_abs_diff"],
        "rvesv_mae_ml": completion_errors["rvesv_ml"]["mean_abs_diff"],
        "lvef_mae": completion_errors["lvef"]["mean_abs_diff"],
        "model": model_metrics,
        "pca": {
            **_metrics_block(pca),
            "fitted_on": baseline_note,
            "n_components": [b.n_components_ for b in baselines],
        },
        "surface_every_k_frames": settings.completion_surface_every,
    }
    generation_block = {
        "n_subjects": len(test),
        "samples_per_subject": n_s,
        "mean": {
            "dice": _per_structure(mean_over_samples[:, 0]),
            "hd_mm": _per_structure(mean_over_samples[:, 1]),
            "assd_mm": _per_structure(mean_over_samples[:, 2]),
        },
        "best": {
            "dice": _per_structure(best_dice),
            "hd_mm": _per_structure(best_hd),
            "assd_mm": _per_structure(best_assd),
        },
        "surface_every_k_frames": settings.generation_surface_every,
        "prior": (
            f"fitted p(z0 | c), components {list(prior.groups)}" if prior is not None else "N(0, I)"
        ),
        "lvef": lvef_block(
            gen_table["lvef"],
            real_table["lvef"],
            components if prior is not None else None,
            test.groups if any(test.groups) else None,
        ),
    }
    phenotypes = {
        "completion": completion_errors,
        "pca": _differences(_phenotype_table(pca_ph), real_table),
        "generation_mean_of_samples": _differences(
            _phenotype_table(gen_subject_mean_ph), real_table
        ),
    }
    report = {
        "settings": asdict(settings),
        "completion": completion_block,
        "generation": generation_block,
        "phenotypes": phenotypes,
        "distributions": distributions,
        "effects": effects_block(real_table, gen_table, np.array(ages), np.array(male), n_s),
        "topology": topology_block(exposed["completed"], exposed["generated"], exposed["real"]),
    }
    report["targets"] = cohort_targets(report)
    report["passed"] = all(t["pass"] for t in report["targets"].values())
    return report
