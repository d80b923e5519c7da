"""The tooltip of every control, in one place, so the words stay consistent across panels."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QAbstractSlider, QWidget

from cardio_explorer.engine.labels import LABEL_TABLE

GROUP_TIP = (
    "Which group of CHeart's training cohort the generated hearts (and the sweep's) come from: "
    "normal (NOR) by default; DCM, HCM, MINF or ARV for that pathology; any draws the group from "
    "the conditions, as often as in the training cohort (about 1 in 5 each), so most hearts "
    "are then pathological"
)
NO_GROUPS_TIP = (
    "This CHeart model's prior has no groups: every heart is drawn from the conditions alone"
)
# attribute path from the window -> tooltip. A missing attribute is skipped (panels change).
TOOLTIPS: dict[str, str] = {
    "morph_panel.subject": "The heart to morph: a NOR subject of the latent atlas, a subject of "
    "a loaded cohort, or your own heart (File > Open heart)",
    "morph_panel.target": "Pathology to morph towards (a pseudo-pathology sample of that group)",
    "morph_panel.phase_ed": "Show end-diastole (largest volume)",
    "morph_panel.phase_es": "Show end-systole (smallest volume)",
    "morph_panel.alpha": "Alpha: 0 % is the subject as it is, 100 % the pathology sample; the "
    "heart in between is decoded from the interpolated latent codes (arrow keys step 1 %)",
    "morph_panel.play": "Sweep alpha from 0 to 100 % and back (Space)",
    "morph_panel.loop": "Bounce between 0 and 100 % instead of stopping at 100 %",
    "morph_panel.speed": "Sweep speed (1x: the whole morph in 2.5 s)",
    "morph_panel.seed": "Seed of the pseudo-pathology sample (same seed, same sample)",
    "conditions_panel.sex": "Sex (a condition of CHeart)",
    "conditions_panel.group": GROUP_TIP,
    "conditions_panel.n_samples": "How many hearts CHeart generates for these conditions",
    "conditions_panel.sweep_condition": "The condition swept over its training range",
    "conditions_panel.sweep_n": "Hearts generated at each step of the sweep (averaged)",
    "conditions_panel.sweep_phenotype": "The phenotype plotted against the swept condition",
    "conditions_panel.sweep": "Run the sweep: phenotypes of generated hearts vs the condition",
    "playback.play": "Play / pause the heartbeat (Space)",
    "playback.slider": "Frame of the 3D+t sequence",
    "playback.loop": "Loop the heartbeat",
    "playback.ed_button": "Jump to end-diastole",
    "playback.es_button": "Jump to end-systole",
    "surface_controls.smoothing": "Surface smoothing iterations (0: raw voxel steps)",
    "surface_controls.clip": "Cut the 3D heart at the short-axis slice shown on the right",
    "surface_controls.reset": "Frame the camera on the heart again (R)",
    "views.slice.slider": "Short-axis slice, base to apex",
}
CONDITION_TIPS = {
    "age": "Age in years (a condition of CHeart)",
    "height": "Height in cm (a condition of CHeart)",
    "weight": "Weight in kg (a condition of CHeart)",
    "sbp": "Systolic blood pressure in mmHg (a condition of CHeart)",
}


def _resolve(root: Any, path: str) -> Any:
    for name in path.split("."):
        root = getattr(root, name, None)
        if root is None:
            return None
    return root


def apply_tooltips(window: QWidget) -> None:
    """Set the tooltip of every known control of ``window`` (keeps tips set elsewhere)."""
    for path, tip in TOOLTIPS.items():
        widget = _resolve(window, path)
        if isinstance(widget, QWidget) and not widget.toolTip():
            widget.setToolTip(tip)
    spins = _resolve(window, "conditions_panel.spins") or {}
    for name, spin in spins.items():
        if not spin.toolTip():
            spin.setToolTip(CONDITION_TIPS.get(name, f"{name} (a condition of CHeart)"))
    controls = _resolve(window, "surface_controls")
    for attr, what in (
        ("visible", "Show or hide the {}"),
        ("opacity", "Opacity of the {}"),
        ("colour", "Colour of the {}"),
    ):
        for value, widget in (getattr(controls, attr, None) or {}).items():
            description = LABEL_TABLE.entry(value).description
            if not widget.toolTip() or widget.toolTip() in ("opacity", "colour"):
                widget.setToolTip(what.format(description))
    # the slice slider of any slice view (the own-image view too)
    for slider in window.findChildren(QAbstractSlider):
        if not slider.toolTip() and slider.objectName() == "":
            parent = slider.parent()
            if parent is not None and type(parent).__name__ in ("SliceView", "LongAxisView"):
                slider.setToolTip("Short-axis slice, base to apex")
