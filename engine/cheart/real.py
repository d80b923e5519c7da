"""CHeart on real hearts (``evaluate cheart --real``): complete each real ED frame and compare
the completed frame at the real end-systolic phase with the real ES labels.

Real sources hold ED and ES frames only (ACDC, M&Ms), so CHeart is judged on ED -> ES. The ED
and ES frames go onto the model grid together (engine/cheart/data.py ``to_model_grid``: one
anatomical frame measured from both, the grid centred on ED), so the ES labels stay where the
scanner put them relative to ED. The ES phase is (ES - ED) / NbFrame of the subject's cycle;
a source that does not know the cycle length (M&Ms flat files) takes the training cohort's
median phase, ``DEFAULT_ES_PHASE``. Conditions a source lacks (ACDC: age, sex, SBP) take the
model's training statistics: the median where the checkpoint stores it, else the mean, and the
more common sex. LVEF and LVESV are measured on the model grid for both the completed and the
real frames, so resampling affects both alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cardio_explorer.engine.cheart.conditions import NUMERIC, ConditionStats
from cardio_explorer.engine.cheart.data import to_model_grid
from cardio_explorer.engine.cheart.inference import decode_from_z, encode_ed
from cardio_explorer.engine.cheart.model import CHeartModel
from cardio_explorer.engine.cheart.targets import TARGET_REAL_LVEF_MAE, TARGET_REAL_LVESV_MAE_ML
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.overlap import STRUCTURES, dice_scores
from cardio_explorer.engine.metrics.topology import sequence_exposed_fractions
from cardio_explorer.engine.subject import Conditions, Subject
from cardio_explorer.engine.volume import LabelVolume

# Median ES phase of the synthetic training cohort (ES at frame 7-8 of 20: 0.35-0.40).
DEFAULT_ES_PHASE = 0.375


def es_phase(subject: Subject) -> tuple[float, bool]:
    """(ES phase as a fraction of the cycle, whether it was known) of a subject."""
    if subject.es_frame is None:
        raise CardioInputError(subject.subject_id, "no end-systolic frame known")
    if subject.n_frames > 2:
        return ((subject.es_frame - subject.ed_frame) % subject.n_frames) / subject.n_frames, True
    return DEFAULT_ES_PHASE, False


def filled_conditions(subject: Subject, stats: ConditionStats) -> tuple[Conditions, list[str]]:
    """The subject's conditions, each missing one from the training statistics; and the names
    of those filled in."""
    if subject.conditions is not None:
        return subject.conditions, []
    centre = stats.to_dict().get("median") or stats.mean
    values: dict[str, Any] = {}
    filled = []
    for name in NUMERIC:
        value = subject.info.get(name)
        try:
            values[name] = float(value)
            if not np.isfinite(values[name]) or values[name] <= 0:
                raise ValueError
        except (TypeError, ValueError):
            values[name] = float(centre[name])
            filled.append(name)
    sex = str(subject.info.get("sex") or "").strip().upper()[:1]
    if sex not in ("F", "M"):
        counts = stats.sex_counts or {"F": 1}
        sex = max(sorted(counts), key=lambda s: counts[s])
        filled.append("sex")
    return Conditions(sex=sex, **values), filled


def _lv_ml(labels: np.ndarray, voxel_ml: float) -> float:
    return float(np.count_nonzero(labels == Label.LV)) * voxel_ml


def _ef(edv: float, esv: float) -> float:
    return 100.0 * (edv - esv) / edv if edv > 0 else float("nan")


def complete_real(model: CHeartModel, subject: Subject, calibrate: bool = True) -> dict[str, Any]:
    """One real subject: ED completed (``calibrate`` as in ``decode_from_z``), the frame at its
    ES phase against its ES labels."""
    ed, es = subject.ed_labels, subject.es_labels
    if not ed.same_grid(es):
        raise CardioInputError(subject.subject_id, "ED and ES labels are not on one grid")
    config = model.config
    pair = LabelVolume(data=np.stack([ed.data, es.data]), affine=ed.affine, name=ed.name)
    on_grid = to_model_grid(pair, config.grid, config.spacing)
    real_ed, real_es = on_grid.data[0], on_grid.data[1]
    conditions, filled = filled_conditions(subject, model.stats)
    ed_grid = LabelVolume(data=real_ed, affine=on_grid.affine, name=subject.subject_id)
    mu, _ = encode_ed(model, ed_grid, conditions)
    labels, _ = decode_from_z(model, mu[None], [conditions], real_ed[None], calibrate=calibrate)
    sequence = labels[0]
    phase, known = es_phase(subject)
    frame = round(phase * config.n_frames) % config.n_frames
    voxel_ml = float(np.prod(config.spacing)) / 1000.0
    edv, esv = _lv_ml(real_ed, voxel_ml), _lv_ml(real_es, voxel_ml)
    pred_edv, pred_esv = _lv_ml(sequence[0], voxel_ml), _lv_ml(sequence[frame], voxel_ml)
    dice = dice_scores(sequence[frame], real_es)
    return {
        "subject": subject.subject_id,
        "group": subject.group,
        "es_phase": round(phase, 4),
        "es_phase_known": known,
        "es_model_frame": frame,
        "conditions_filled": filled,
        "real": {"lvedv_ml": edv, "lvesv_ml": esv, "lvef": _ef(edv, esv)},
        "completed": {"lvedv_ml": pred_edv, "lvesv_ml": pred_esv, "lvef": _ef(pred_edv, pred_esv)},
        "completed_min_lv_ml": float(min(_lv_ml(f, voxel_ml) for f in sequence)),
        "dice_es": {s: float(d) for s, d in zip(STRUCTURES, dice, strict=True)},
        # frames the model made; frame 0 is the given ED, whose own labels may leak
        "lv_exposed_fraction_max": float(sequence_exposed_fractions(sequence[1:]).max()),
        "lv_exposed_fraction_given_ed": float(sequence_exposed_fractions(sequence[:1]).max()),
    }


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``real.completion`` figures of per-subject rows (see :func:`complete_real`)."""
    lvef_err = [abs(r["completed"]["lvef"] - r["real"]["lvef"]) for r in rows]
    lvesv_err = [abs(r["completed"]["lvesv_ml"] - r["real"]["lvesv_ml"]) for r in rows]
    dice = {s: _mean([r["dice_es"][s] for r in rows]) for s in STRUCTURES}
    present = [v for v in dice.values() if v is not None]
    dice["mean"] = float(np.mean(present)) if present else None
    return {
        "n_subjects": len(rows),
        "lvef_mae": _mean(lvef_err),
        "lvesv_mae_ml": _mean(lvesv_err),
        "dice_es": dice,
        "lvef_completed_mean": _mean([r["completed"]["lvef"] for r in rows]),
        "lvef_real_mean": _mean([r["real"]["lvef"] for r in rows]),
        "lv_exposed_fraction_max": max((r["lv_exposed_fraction_max"] for r in rows), default=None),
    }


def evaluate_real(
    model: CHeartModel,
    sources: dict[str, list[Subject]],
    progress: bool = False,
    calibrate: bool = True,
) -> dict[str, Any]:
    """``real`` block of the report: per source and over all sources, with targets."""
    out: dict[str, Any] = {"sources": {}}
    everything = []
    for name, subjects in sources.items():
        rows = []
        for subject in subjects:
            rows.append(complete_real(model, subject, calibrate))
            if progress:
                print(f"  real {name}: {subject.subject_id} done", flush=True)
        everything.extend(rows)
        out["sources"][name] = {"completion": summarise(rows), "subjects": rows}
    out["completion"] = summarise(everything)
    out["targets"] = real_targets(out)
    return out


def real_targets(real: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's real-heart targets, per source (each must meet them)."""
    out = {}
    for name, block in real["sources"].items():
        c = block["completion"]
        for key, threshold in (
            ("lvef_mae", TARGET_REAL_LVEF_MAE),
            ("lvesv_mae_ml", TARGET_REAL_LVESV_MAE_ML),
        ):
            value = c[key]
            out[f"real_{name}_{key}"] = {
                "value": value,
                "threshold": f"<= {threshold:g}",
                "pass": value is not None and value <= threshold,
            }
    return out
