"""Physiology sections of the ``evaluate cheart`` report: generated LVEF, age and sex effects,
and the LV blood pool's enclosure (topology).

- ``generation.lvef``: LVEF of each generated sequence (ES = its frame of least LV volume, as
  for the real sequences), mean and SD against the real sequences', and per prior mixture
  component when the model has a fitted prior;
- ``effects``: least squares y = a + b age/10 + c male on the real sequences and on the
  generated ones (same conditions): b per decade, c male - female, for LVEDV and LV mass;
- ``topology``: ``lv_exposed_fraction`` (engine/metrics/topology.py) of every completed frame
  the model made and every generated frame; the real sequences' figure is given for scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cardio_explorer.engine.cheart.targets import TARGET_LV_EXPOSED_FRACTION

EFFECT_PHENOTYPES = ("lvedv_ml", "lvm_g")


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _mean_sd(values: np.ndarray) -> dict[str, Any]:
    """n, mean and sample SD (None where undefined)."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "n": int(values.size),
        "mean": _finite(values.mean()) if values.size else None,
        "sd": _finite(values.std(ddof=1)) if values.size > 1 else None,
    }


def _by_name(values: np.ndarray, names: Sequence[str | None]) -> dict[str, dict[str, Any]]:
    keys = [name or "unknown" for name in names]
    return {key: _mean_sd(values[[k == key for k in keys]]) for key in sorted(set(keys))}


def lvef_block(
    generated: np.ndarray,
    real: np.ndarray,
    components: Sequence[str] | None = None,
    real_groups: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """``generation.lvef``: generated vs real LVEF (percent), per component where known."""
    gen, ref = _mean_sd(generated), _mean_sd(real)
    return {
        "mean": gen["mean"],
        "sd": gen["sd"],
        "real_mean": ref["mean"],
        "real_sd": ref["sd"],
        "n_generated": gen["n"],
        "n_real": ref["n"],
        "by_component": None if components is None else _by_name(generated, components),
        "real_by_group": None if real_groups is None else _by_name(real, real_groups),
    }


def age_sex_effects(values: np.ndarray, ages: np.ndarray, male: np.ndarray) -> tuple[float, float]:
    """(b per decade, c male - female) of y = a + b age/10 + c male."""
    design = np.column_stack([np.ones_like(ages), ages / 10.0, male])
    coef = np.linalg.lstsq(design, values, rcond=None)[0]
    return float(coef[1]), float(coef[2])


def effects_block(
    real: dict[str, np.ndarray],
    generated: dict[str, np.ndarray],
    ages: np.ndarray,
    male: np.ndarray,
    samples_per_subject: int,
) -> dict[str, dict[str, dict[str, float | None]]]:
    """``effects.age.<p>_per_decade`` and ``effects.sex.<p>_male_minus_female``, real and
    generated side by side; the generated sequences are ``samples_per_subject`` per real one."""
    gen_ages = np.repeat(ages, samples_per_subject)
    gen_male = np.repeat(male, samples_per_subject)
    out: dict[str, dict[str, dict[str, float | None]]] = {"age": {}, "sex": {}}
    for p in EFFECT_PHENOTYPES:
        real_age, real_sex = age_sex_effects(real[p], ages, male)
        gen_age, gen_sex = age_sex_effects(generated[p], gen_ages, gen_male)
        for effect, key, r, g in (
            ("age", f"{p}_per_decade", real_age, gen_age),
            ("sex", f"{p}_male_minus_female", real_sex, gen_sex),
        ):
            out[effect][key] = {
                "real": _finite(r),
                "generated": _finite(g),
                "ratio": _finite(g / r) if r != 0 else None,
            }
    return out


def _fractions(values: Sequence[np.ndarray]) -> dict[str, Any]:
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(0)
    return {
        "frames": int(flat.size),
        "max": float(flat.max()) if flat.size else None,
        "mean": float(flat.mean()) if flat.size else None,
        "frames_over_target": int(np.count_nonzero(flat > TARGET_LV_EXPOSED_FRACTION)),
    }


def topology_block(
    completed: Sequence[np.ndarray], generated: Sequence[np.ndarray], real: Sequence[np.ndarray]
) -> dict[str, Any]:
    """``topology``: exposed fractions per frame -> the worst over completed and generated
    frames (``lv_exposed_fraction``) and each set's own figures."""
    made = _fractions([*completed, *generated])
    return {
        "lv_exposed_fraction": made["max"],
        "completion": _fractions(completed),
        "generation": _fractions(generated),
        "real_sequences": _fractions(real),
        "frames": "completion: frames 1.. (frame 0 is the given ED); generation: every frame",
    }
