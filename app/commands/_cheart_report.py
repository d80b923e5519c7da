"""The Markdown of ``evaluate cheart``'s report: targets, then per cohort completion,
generation, phenotypes, generated LVEF, age and sex effects and topology; then real hearts."""

from __future__ import annotations

from typing import Any

from cardio_explorer.app.commands._reports import fmt, markdown_head


def render_markdown(report: dict[str, Any]) -> str:
    """A short human-readable version of the JSON report."""
    ck = report["checkpoint"]
    cohorts = report.get("cohorts") or ({"": report} if "completion" in report else {})
    sizes = ", ".join(f"{c['completion']['n_subjects']} subjects" for c in cohorts.values())
    summary = (
        f"Checkpoint `{ck['path']}` (grid {ck['grid']} at {ck['spacing_mm']} mm, "
        f"{ck['n_frames']} frames), data {report['data'] or 'none'} ({sizes or 'no cohort'}), "
        f"real {report.get('real_data') or 'none'}, {report['device']}, {report['precision']}; "
        f"{report['elapsed_s']} s."
    )
    if report.get("calibrated"):
        summary += " Sequences calibrated to the motion code's ejection fraction."
    lines = markdown_head("CHeart evaluation", summary, report["targets"])
    for name, cohort in cohorts.items():
        lines += _cohort_markdown(cohort, f" ({name})" if name else "")
    if "real" in report:
        lines += _real_markdown(report["real"])
    lines.append("")
    return "\n".join(lines)


def _metric_rows(name: str, block: dict[str, Any]) -> list[str]:
    rows = []
    for metric, digits in (("dice", 3), ("hd_mm", 2), ("assd_mm", 2)):
        v = block[metric]
        rows.append(
            f"| {name} | {metric} | {fmt(v['lv'], digits)} | {fmt(v['myo'], digits)} "
            f"| {fmt(v['rv'], digits)} | {fmt(v['mean'], digits)} |"
        )
    return rows


def _real_markdown(real: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Real hearts: ED completed, frame at the real ES phase vs real ES",
        "",
        "| source | subjects | LVEF MAE (points) | LVESV MAE mL | Dice ES lv / myo / rv / mean "
        "| LVEF completed / real (mean) | LV exposed (max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in [
        *((k, v["completion"]) for k, v in real["sources"].items()),
        ("all", real["completion"]),
    ]:
        d = c["dice_es"]
        lines.append(
            f"| {name} | {c['n_subjects']} | {fmt(c['lvef_mae'], 1)} | {fmt(c['lvesv_mae_ml'], 1)} "
            f"| {fmt(d['lv'])} / {fmt(d['myo'])} / {fmt(d['rv'])} / {fmt(d['mean'])} "
            f"| {fmt(c['lvef_completed_mean'], 1)} / {fmt(c['lvef_real_mean'], 1)} "
            f"| {fmt(c['lv_exposed_fraction_max'], 4)} |"
        )
    return lines


def _cohort_markdown(report: dict[str, Any], title: str) -> list[str]:
    comp, gen = report["completion"], report["generation"]
    lines = [
        "",
        f"## Sequence completion from ED (all frames){title}",
        "",
        f"PCA baseline fitted on {comp['pca']['fitted_on']}. Completion LVESV / RVESV MAE "
        f"{fmt(comp['lvesv_mae_ml'], 1)} / {fmt(comp['rvesv_mae_ml'], 1)} mL, LVEF MAE "
        f"{fmt(comp['lvef_mae'], 1)} points.",
        "",
        "| method | metric | lv | myo | rv | mean |",
        "|---|---|---|---|---|---|",
        *_metric_rows("CHeart", comp["model"]),
        *_metric_rows("PCA", comp["pca"]),
        "",
        f"## Generation ({gen['samples_per_subject']} samples per subject's conditions){title}",
        "",
        f"z0 prior: {gen.get('prior', 'N(0, I)')}",
        "",
        "| samples | metric | lv | myo | rv | mean |",
        "|---|---|---|---|---|---|",
        *_metric_rows("mean", gen["mean"]),
        *_metric_rows("best", gen["best"]),
        "",
        f"## Phenotypes: generated vs real{title}",
        "",
        "| phenotype | completion mean abs diff | generation mean abs diff | KL | Wasserstein |"
        " generated mean | real mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, d in report["distributions"].items():
        lines.append(
            f"| {p} | {fmt(report['phenotypes']['completion'][p]['mean_abs_diff'], 1)} | "
            f"{fmt(report['phenotypes']['generation_mean_of_samples'][p]['mean_abs_diff'], 1)} "
            f"| {fmt(d['kl'])} | {fmt(d['wasserstein'], 1)} | {fmt(d['generated_mean'], 1)} "
            f"| {fmt(d['real_mean'], 1)} |"
        )
    return lines + _lvef_lines(gen["lvef"], title) + _physiology_lines(report, title)


def _lvef_lines(lvef: dict[str, Any], title: str) -> list[str]:
    lines = [
        "",
        f"## Generated LVEF (ES = frame of least LV volume){title}",
        "",
        "| sequences | n | mean % | SD |",
        "|---|---|---|---|",
        f"| generated | {lvef['n_generated']} | {fmt(lvef['mean'], 1)} | {fmt(lvef['sd'], 1)} |",
        f"| real | {lvef['n_real']} | {fmt(lvef['real_mean'], 1)} | {fmt(lvef['real_sd'], 1)} |",
    ]
    for label, groups in (
        ("generated, prior component", lvef["by_component"]),
        ("real, group", lvef["real_by_group"]),
    ):
        for name, g in (groups or {}).items():
            lines.append(f"| {label} {name} | {g['n']} | {fmt(g['mean'], 1)} | {fmt(g['sd'], 1)} |")
    return lines


def _physiology_lines(report: dict[str, Any], title: str) -> list[str]:
    lines = [
        "",
        f"## Age and sex effects (least squares on age/10 and sex){title}",
        "",
        "| effect | real | generated | generated / real |",
        "|---|---|---|---|",
    ]
    for effect, effects in report["effects"].items():
        for key, v in effects.items():
            lines.append(
                f"| {effect}.{key} | {fmt(v['real'], 2)} | {fmt(v['generated'], 2)} "
                f"| {fmt(v['ratio'], 2)} |"
            )
    topology = report["topology"]
    lines += [
        "",
        f"## Topology: LV blood pool exposed to background or RV{title}",
        "",
        f"Frames: {topology['frames']}.",
        "",
        "| sequences | frames | max | mean | frames over target |",
        "|---|---|---|---|---|",
    ]
    for name in ("completion", "generation", "real_sequences"):
        t = topology[name]
        lines.append(
            f"| {name} | {t['frames']} | {fmt(t['max'], 4)} | {fmt(t['mean'], 4)} "
            f"| {t['frames_over_target']} |"
        )
    return lines
