"""Dice per structure and group (mean +- SD over seeds), arm deltas and paired tests.

Per seed, a group's Dice is the mean over its test volumes; the report gives the mean and SD of
that over seeds. "pathological" pools every volume whose group is not NOR (and not unknown).
The paired test compares two arms volume by volume (each volume's mean Dice averaged over
seeds): Wilcoxon signed-rank, two-sided, from scipy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from cardio_explorer.engine.utility.data import REFERENCE_GROUP, UNKNOWN_GROUP

KEYS = ("lv", "myo", "rv", "mean")
DELTAS = (
    ("c_minus_a", "c", "a"),
    ("c_minus_b", "c", "b"),
    ("b_minus_a", "b", "a"),
    ("d_minus_b", "d", "b"),  # with arm (d) only: does synthetic add to augmentation?
)
PAIRED = ("c_minus_a", "c_minus_b", "d_minus_b")
TARGET_PATHOLOGICAL = 0.02
TARGET_NOR = -0.005

# records[arm][seed] -> list of volume records of one test set
Records = Mapping[str, Sequence[Sequence[dict[str, Any]]]]


def pool_of(group: str) -> list[str]:
    """The pools a volume of ``group`` counts in."""
    pools = ["all", group]
    if group == REFERENCE_GROUP:
        pools.append("nor")
    elif group != UNKNOWN_GROUP:
        pools.append("pathological")
    return pools


def _pool_means(volumes: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{pool: {structure: mean Dice over the pool's volumes}} for one seed."""
    sums: dict[str, list[dict[str, float]]] = {}
    for v in volumes:
        for pool in pool_of(v["group"]):
            sums.setdefault(pool, []).append(v)
    return {p: {k: float(np.mean([v[k] for v in vs])) for k in KEYS} for p, vs in sums.items()}


def _mean_sd(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    sd = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": round(float(arr.mean()), 4), "sd": round(sd, 4), "n_seeds": len(arr)}


def dice_table(records: Records) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{arm: {pool: {structure: {mean, sd, n_seeds}}}}."""
    table: dict[str, Any] = {}
    for arm, seeds in records.items():
        per_seed = [_pool_means(volumes) for volumes in seeds]
        pools = sorted({p for s in per_seed for p in s})
        table[arm] = {
            pool: {k: _mean_sd([s[pool][k] for s in per_seed if pool in s]) for k in KEYS}
            for pool in pools
        }
    return table


def deltas(table: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """{c_minus_a | c_minus_b | b_minus_a [| d_minus_b]: {pool: difference of the mean Dice}}."""
    out: dict[str, dict[str, float | None]] = {}
    for name, left, right in DELTAS:
        if left not in table or right not in table:
            continue
        pools = sorted(set(table[left]) | set(table[right]) | {"pathological", "nor", "all"})
        out[name] = {
            pool: (
                round(table[left][pool]["mean"]["mean"] - table[right][pool]["mean"]["mean"], 4)
                if pool in table[left] and pool in table[right]
                else None
            )
            for pool in pools
        }
    return out


def _volume_means(seeds: Sequence[Sequence[dict[str, Any]]]) -> dict[tuple, tuple[str, float]]:
    """{(subject, phase): (group, mean Dice averaged over seeds)}."""
    acc: dict[tuple, list[float]] = {}
    groups: dict[tuple, str] = {}
    for volumes in seeds:
        for v in volumes:
            key = (v["subject"], v["phase"])
            acc.setdefault(key, []).append(v["mean"])
            groups[key] = v["group"]
    return {k: (groups[k], float(np.mean(x))) for k, x in acc.items()}


def paired_tests(records: Records) -> dict[str, dict[str, dict[str, Any]]]:
    """Wilcoxon signed-rank of c vs a, c vs b [, d vs b] per pool ('all', 'pathological', 'nor')."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    means = {arm: _volume_means(seeds) for arm, seeds in records.items()}
    for name, left, right in DELTAS:
        if name not in PAIRED or left not in means or right not in means:
            continue
        keys = sorted(set(means[left]) & set(means[right]))
        out[name] = {}
        for pool in ("all", "pathological", "nor"):
            chosen = [k for k in keys if pool in pool_of(means[left][k][0])]
            diff = np.array([means[left][k][1] - means[right][k][1] for k in chosen])
            out[name][pool] = _wilcoxon(diff)
    return out


def _wilcoxon(diff: np.ndarray) -> dict[str, Any]:
    result: dict[str, Any] = {
        "test": "wilcoxon signed-rank (two-sided), volumes paired",
        "n_volumes": len(diff),
        "median_difference": round(float(np.median(diff)), 4) if len(diff) else None,
        "p_value": None,
    }
    if len(diff) == 0:
        return result
    if not np.any(diff):
        result["p_value"] = 1.0
        return result
    result["p_value"] = round(float(stats.wilcoxon(diff).pvalue), 5)
    return result


def targets(delta: Mapping[str, Mapping[str, float | None]], test_name: str) -> dict[str, Any]:
    """The issue's targets on one test set: (c)-(a) on pathological and NOR; (c) beats (b)."""
    ca, cb = delta.get("c_minus_a", {}), delta.get("c_minus_b", {})
    path, nor, beat = ca.get("pathological"), ca.get("nor"), cb.get("pathological")
    return {
        f"{test_name}: delta.c_minus_a.pathological": {
            "value": path,
            "threshold": f">= {TARGET_PATHOLOGICAL}",
            "pass": path is not None and path >= TARGET_PATHOLOGICAL,
        },
        f"{test_name}: delta.c_minus_a.nor": {
            "value": nor,
            "threshold": f">= {TARGET_NOR}",
            "pass": nor is not None and nor >= TARGET_NOR,
        },
        f"{test_name}: delta.c_minus_b.pathological (c beats b)": {
            "value": beat,
            "threshold": "> 0",
            "pass": beat is not None and beat > 0,
        },
    }


def flat_deltas(delta: Mapping[str, Mapping[str, float | None]]) -> dict[str, float | None]:
    """{'delta.c_minus_a.pathological': ..., ...}: the deltas by their dotted report keys."""
    return {f"delta.{name}.{pool}": v for name, pools in delta.items() for pool, v in pools.items()}
