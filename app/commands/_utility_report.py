"""The Markdown of ``evaluate utility``'s report: targets, Dice per group per arm, deltas, tests."""

from __future__ import annotations

from typing import Any

from cardio_explorer.app.commands._reports import fmt, markdown_head


def _cell(cell: dict[str, Any] | None) -> str:
    return "n/a" if cell is None else f"{cell['mean']:.3f} +- {cell['sd']:.3f}"


def _test_set(name: str, t: dict[str, Any], arms: dict[str, str]) -> list[str]:
    groups = ", ".join(f"{g} {n}" for g, n in t["groups"].items())
    pools = sorted({p for arm in t["dice"].values() for p in arm})
    lines = [
        "",
        f"## {name} ({t['n_volumes']} volumes; {groups})",
        "",
        "Mean Dice (LV, MYO, RV), mean +- SD over seeds:",
        "",
        "| group | " + " | ".join(f"({a})" for a in arms) + " |",
        "|---|" + "---|" * len(arms),
    ]
    for pool in pools:
        cells = [_cell(t["dice"].get(a, {}).get(pool, {}).get("mean")) for a in arms]
        lines.append(f"| {pool} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per structure (all volumes):",
        "",
        "| arm | lv | myo | rv |",
        "|---|---|---|---|",
    ]
    for a in arms:
        cell = t["dice"].get(a, {}).get("all", {})
        lines.append(
            f"| ({a}) | {_cell(cell.get('lv'))} | {_cell(cell.get('myo'))} | "
            f"{_cell(cell.get('rv'))} |"
        )
    lines += ["", "| difference | " + " | ".join(pools) + " |", "|---|" + "---|" * len(pools)]
    for name_d, values in t["delta"].items():
        lines.append(f"| {name_d} | " + " | ".join(fmt(values.get(p)) for p in pools) + " |")
    lines += [
        "",
        "| paired test | pool | volumes | median difference | p |",
        "|---|---|---|---|---|",
    ]
    for name_t, by_pool in t["paired_tests"].items():
        for pool, r in by_pool.items():
            lines.append(
                f"| {name_t} | {pool} | {r['n_volumes']} | {fmt(r['median_difference'])} | "
                f"{fmt(r['p_value'], 4)} |"
            )
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """A human-readable summary of the utility report."""
    seg, syn = report["segmenter"], report["synthetic"]
    summary = (
        f"Data `{report['data']}` (split `{report['split']}`), {report['device']}, "
        f"{report['precision']}; {report['elapsed_s']} s. Scarce set: "
        + ", ".join(f"{g} {n}" for g, n in report["scarce"]["groups"].items())
        + f" ({report['scarce']['real_slices']} real slices). Synthetic: {syn['volumes']} "
        f"volumes ({syn['slices']} slices) from {len(syn['references'])} NOR references. "
        f"Segmenter {seg['architecture']}, {seg['steps']} steps of {seg['batch_size']} "
        f"({seg.get('lr_schedule', 'constant')} learning rate), seeds {seg['seeds']}."
    )
    lines = markdown_head("Utility of synthetic data on real hearts", summary, report["targets"])
    lines += ["", "Arms: " + "; ".join(f"({a}) {n}" for a, n in report["arms"].items())]
    for name, t in report["test_sets"].items():
        lines += _test_set(name, t, report["arms"])
    lines += ["", f"Plot: `{report['plot']}`", ""]
    return "\n".join(lines)
