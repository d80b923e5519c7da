"""Evaluation of a label VAE and its latent atlas on held-out subjects, against the issue's targets.

Three parts: reconstruction Dice of every held-out ED/ES stack (encode each slice's posterior
mean, decode); NOR -> pathology morphs (phenotypes at evenly spaced alphas, ED and ES with the
same seed, averaged over seeds; their Spearman correlation with alpha; the share of alpha = 1
endpoints meeting the group's ACDC rule); and slice-to-slice irregularity of real stacks,
correlated and uncorrelated endpoints. Morph sources are the held-out NOR subjects (encoded on
the fly) when there are any, else the atlas's own NOR subjects; seed s uses source s mod n.

Irregularity is per slice step, so synthetic stacks are decoded at their source's native slice
positions (the 32-slice latent path resampled along the slices), the sampling the real stacks
have; their 32-slice scores are reported beside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from cardio_explorer.engine.label_vae.atlas import REFERENCE_GROUP, LatentAtlas
from cardio_explorer.engine.label_vae.encoding import REFINE_STEPS, encode_stack, encode_subject
from cardio_explorer.engine.label_vae.morph import MorphResult, PathologyMorph, decode_codes
from cardio_explorer.engine.labels import STRUCTURES
from cardio_explorer.engine.metrics.consistency import irregularity
from cardio_explorer.engine.metrics.diagnosis import meets_group_rule
from cardio_explorer.engine.metrics.overlap import dice_per_structure
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.engine.subject import PATHOLOGY_GROUPS, PHASES, Subject
from cardio_explorer.engine.volume import LabelVolume

REPORTED_PHENOTYPES = ("lvedv_ml", "lvef", "lvm_g", "max_wall_mm", "rvedv_ml", "rvef")

# The targets: (name, description, how the value is read from the report, test).
MIN_RECON_DICE_MEAN = 0.95
MIN_RECON_DICE_STRUCTURE = 0.90
MIN_SPEARMAN = 0.9
MIN_ENDPOINT_SHARE = 0.8
MAX_CORRELATED_VS_UNCORRELATED = 0.7  # "at least 30 % below"
MAX_CORRELATED_VS_REAL = 1.5
# (group, phenotype, sign): the phenotype must rise (+1) or fall (-1) with alpha.
TRENDS = (
    ("HCM", "max_wall_mm", +1),
    ("HCM", "lvm_g", +1),
    ("DCM", "lvedv_ml", +1),
    ("ARV", "rvedv_ml", +1),
    ("DCM", "lvef", -1),
    ("MINF", "lvef", -1),
)


@dataclass(frozen=True)
class EvaluationSettings:
    """How much to sample: seeds per target group, alpha steps, device."""

    seeds: int = 20
    alpha_steps: int = 11
    device: str = "cpu"


def evaluate_label_vae(
    model: torch.nn.Module,
    atlas: LatentAtlas,
    subjects: Sequence[Subject],
    settings: EvaluationSettings = EvaluationSettings(),
    progress: bool = False,
) -> dict[str, Any]:
    """Report dict (JSON-able, NaN as None) of a model + atlas on preprocessed held-out subjects."""
    device = torch.device(settings.device)
    fast = model.for_inference() if hasattr(model, "for_inference") else model
    groups = [g for g in PATHOLOGY_GROUPS if g in atlas.groups]
    bar = tqdm(
        total=len(subjects) + len(groups) * settings.seeds,
        desc="evaluate label VAE",
        unit="step",
        disable=not progress,
    )
    with bar:
        recon, real_irregularity, sources = _reconstruction(fast, subjects, device, bar)
        source_kind = "held-out NOR subjects"
        if not sources:
            source_kind = "atlas NOR subjects (no NOR subject in the data)"
        else:
            atlas = atlas.with_references(sources)
        morph = PathologyMorph(fast, atlas, device, optimise=False)
        alphas = np.linspace(0.0, 1.0, settings.alpha_steps)
        morphs, consistency = _morphs(morph, groups, alphas, settings.seeds, bar)
    consistency["real"] = _mean(real_irregularity)
    endpoints = [m["endpoint_rule_met"] for m in morphs.values()]
    met = sum(sum(e) for e in endpoints)
    total = sum(len(e) for e in endpoints)
    report = {
        "settings": {
            "seeds": settings.seeds,
            "alpha_steps": settings.alpha_steps,
            "device": str(device),
            "morph_sources": source_kind,
            "n_sources": len(atlas.references),
            "n_subjects": len(subjects),
        },
        "recon_dice": recon,
        "morph": {g: _summarise_group(m, alphas) for g, m in morphs.items()},
        "endpoint_rule_share": met / total if total else None,
        "consistency": consistency,
    }
    report["targets"] = check_targets(report)
    report["passed"] = all(t["pass"] for t in report["targets"].values())
    return _json_safe(report)


def _reconstruction(
    model: torch.nn.Module, subjects: Sequence[Subject], device: torch.device, bar: tqdm
) -> tuple[dict[str, Any], list[float], list]:
    scores: dict[str, list[float]] = {k: [] for k in (*STRUCTURES, "mean")}
    real: list[float] = []
    sources = []
    for subject in subjects:
        for frame in (subject.ed_frame, subject.es_frame):
            if frame is None or frame not in subject.labels:
                continue
            labels = subject.labels[frame]
            decoded = decode_codes(model, encode_stack(model, labels, device, REFINE_STEPS), device)
            dice = dice_per_structure(labels.with_data(decoded), labels)
            for key in scores:
                scores[key].append(dice[key])
            real.append(irregularity(labels))
        if subject.group == REFERENCE_GROUP and subject.es_frame is not None:
            sources.append(encode_subject(model, subject, device)[0])
        bar.update()
    recon = {key: _mean(values) for key, values in scores.items()}
    recon["n_volumes"] = len(scores["mean"])
    return recon, real, sources


def _morphs(
    morph: PathologyMorph, groups: list[str], alphas: np.ndarray, seeds: int, bar: tqdm
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    ids = morph.atlas.reference_ids
    results: dict[str, dict[str, Any]] = {}
    irregular: dict[str, list[float]] = {
        "correlated": [],
        "uncorrelated": [],
        "correlated_32": [],
        "uncorrelated_32": [],
    }
    for group in groups:
        curves = {name: np.zeros((seeds, len(alphas))) for name in REPORTED_PHENOTYPES}
        rule_met = []
        for seed in range(seeds):
            source = morph.atlas.reference(ids[seed % len(ids)])
            ed = morph.series(source.subject_id, group, "ED", alphas, True, seed)
            es = morph.series(source.subject_id, group, "ES", alphas, True, seed)
            for i, (d, s) in enumerate(zip(ed, es, strict=True)):
                endpoint = measure_phenotypes(d.labels, s.labels)  # the last one: alpha = 1
                values = endpoint.as_dict()
                for name in REPORTED_PHENOTYPES:
                    curves[name][seed, i] = values[name]
            rule_met.append(
                bool(meets_group_rule(group, endpoint, source.conditions, source.bsa_m2))
            )
            flat = [morph.morph(source.subject_id, group, p, 1.0, False, seed) for p in PHASES]
            for mode, stacks in (("correlated", (ed[-1], es[-1])), ("uncorrelated", flat)):
                for result in stacks:
                    irregular[mode].append(irregularity(_native(morph, result)))
                    irregular[f"{mode}_32"].append(irregularity(result.labels))
            bar.update()
        results[group] = {"curves": curves, "endpoint_rule_met": rule_met}
    consistency: dict[str, Any] = {
        "correlated": _mean(irregular["correlated"]),
        "uncorrelated": _mean(irregular["uncorrelated"]),
        "at_32_slices": {
            "correlated": _mean(irregular["correlated_32"]),
            "uncorrelated": _mean(irregular["uncorrelated_32"]),
        },
        "sampling": "synthetic stacks decoded at their source's native slice positions",
    }
    return results, consistency


def _native(morph: PathologyMorph, result: MorphResult) -> LabelVolume:
    # Decoded at the source's own slice positions, as the real stacks are measured. Picking the
    # nearest of the 32 decoded slices instead spaces them unevenly (3 or 4 apart for 10 native
    # slices) and that alone added 7 % to the irregularity of the bundled model's endpoints.
    n_slices = morph.atlas.reference(result.subject_id).geometry[result.phase].n_slices
    return morph.at_native_slices(result) if n_slices >= 3 else result.labels


def _summarise_group(group_result: dict[str, Any], alphas: np.ndarray) -> dict[str, Any]:
    curves = group_result["curves"]
    met = group_result["endpoint_rule_met"]
    spearman = {}
    for name, values in curves.items():
        means = values.mean(axis=0)
        spearman[name] = float(spearmanr(alphas, means).statistic) if np.ptp(means) > 0 else None
    return {
        "alphas": [float(a) for a in alphas],
        "phenotypes": {name: values.mean(axis=0).tolist() for name, values in curves.items()},
        "phenotypes_std": {name: values.std(axis=0).tolist() for name, values in curves.items()},
        "spearman": spearman,
        "endpoint_rule_share": sum(met) / len(met) if met else None,
        "n_endpoints": len(met),
    }


def check_targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Pass/fail of each target of the issue, with the value and the threshold."""
    targets: dict[str, dict[str, Any]] = {}

    def add(name: str, value: float | None, threshold: str, ok: bool) -> None:
        valid = value is not None and not (isinstance(value, float) and math.isnan(value))
        targets[name] = {"value": value, "threshold": threshold, "pass": bool(valid and ok)}

    recon = report["recon_dice"]
    mean = recon.get("mean")
    add("recon_dice_mean", mean, f">= {MIN_RECON_DICE_MEAN}", _ge(mean, MIN_RECON_DICE_MEAN))
    for s in STRUCTURES:
        value = recon.get(s)
        add(
            f"recon_dice_{s}",
            value,
            f">= {MIN_RECON_DICE_STRUCTURE}",
            _ge(value, MIN_RECON_DICE_STRUCTURE),
        )
    for group, name, sign in TRENDS:
        rho = report["morph"].get(group, {}).get("spearman", {}).get(name)
        word = "rises" if sign > 0 else "falls"
        threshold = f"spearman {'>=' if sign > 0 else '<='} {sign * MIN_SPEARMAN:g}"
        add(
            f"{group.lower()}_{name}_{word}",
            rho,
            threshold,
            _ge(None if rho is None else sign * rho, MIN_SPEARMAN),
        )
    share = report["endpoint_rule_share"]
    add(
        "endpoints_meet_group_rule",
        share,
        f">= {MIN_ENDPOINT_SHARE}",
        _ge(share, MIN_ENDPOINT_SHARE),
    )
    c = report["consistency"]
    corr, uncorr, real = c.get("correlated"), c.get("uncorrelated"), c.get("real")
    ratio = corr / uncorr if _finite(corr) and _finite(uncorr) and uncorr > 0 else None
    add(
        "correlated_below_uncorrelated",
        ratio,
        f"correlated / uncorrelated <= {MAX_CORRELATED_VS_UNCORRELATED}",
        _le(ratio, MAX_CORRELATED_VS_UNCORRELATED),
    )
    to_real = corr / real if _finite(corr) and _finite(real) and real > 0 else None
    add(
        "correlated_near_real",
        to_real,
        f"correlated / real <= {MAX_CORRELATED_VS_REAL}",
        _le(to_real, MAX_CORRELATED_VS_REAL),
    )
    return targets


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _ge(x: float | None, bound: float) -> bool:
    return _finite(x) and x >= bound  # type: ignore[operator]


def _le(x: float | None, bound: float) -> bool:
    return _finite(x) and x <= bound  # type: ignore[operator]


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
