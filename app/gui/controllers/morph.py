"""Pathology morph: :class:`MorphController` turns state changes into worker requests (morph
step, phenotype curve, latent embedding, the cached morph path) and hands the newest results to
the display; the panel's widgets are in :mod:`morph_panel`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from cardio_explorer.app.gui.controllers.morph_panel import (  # noqa: F401  (re-exported)
    ALPHA_PER_TICK,
    PLAY_TICK_MS,
    SPEEDS,
    MorphPanel,
)
from cardio_explorer.app.gui.controllers.morph_path import PATH_FIELDS, MorphPath
from cardio_explorer.app.gui.display import Display
from cardio_explorer.app.gui.workers import CoalescingWorker, ResultRouter
from cardio_explorer.app.jobs.latent import LatentRequest
from cardio_explorer.app.jobs.models import Engines
from cardio_explorer.app.jobs.morph import CurveOutput, CurveRequest, MorphRequest
from cardio_explorer.app.jobs.protocol import JobDone, next_request_id
from cardio_explorer.app.jobs.state import AppState

MORPH_FIELDS = frozenset(
    {
        "subject_id",
        "target_group",
        "phase",
        "alpha",
        "correlated",
        "seed",
        "show_image",
        "smoothing",
    }
)
CURVE_FIELDS = frozenset({"subject_id", "target_group", "correlated", "seed"})
LATENT_FIELDS = CURVE_FIELDS | {"phase", "embedding"}


class MorphController(QObject):
    """State changes -> morph / curve / latent requests; newest results -> display + panel."""

    def __init__(
        self,
        state: AppState,
        panel: MorphPanel,
        display: Display,
        worker: CoalescingWorker,
        router: ResultRouter,
        engines: Engines,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state, self.panel, self.display = state, panel, display
        self.worker = worker
        self.engines = engines
        self.last_result: JobDone | None = None  # the morph step on screen
        self.on_shown = None  # callable(output) set by the window (status bar, first heart)
        self.path = MorphPath(state, display, worker, router, parent=self)
        router.route("morph", self._morph_done, partial=self._morph_done)
        # the exact alpha once playback or a drag ends (the cache holds 21 of them)
        panel.playing_changed.connect(self._settle_alpha)
        panel.alpha.sliderReleased.connect(self._settle_alpha)
        router.route("curve", self._curve_done)
        router.route("latent", self._latent_done)
        state.subscribe(self._on_state)

    # engines --------------------------------------------------------------------------------
    def set_engines(self, engines: Engines) -> None:
        """Use other models (checkpoint or cohort loaded): refill pickers, redraw."""
        self.engines = engines
        morph = engines.morph
        spade = engines.slot("spade")
        spade_note = "" if spade.ready else spade.message
        if morph is None:
            self.panel.set_available(False, engines.slot("label_vae").message, spade_note)
            return
        self.panel.set_available(True, "", spade_note)
        atlas = morph.atlas
        ids = atlas.reference_ids
        self.panel.set_subjects(ids, [atlas.reference(s).group for s in ids])
        targets = [g for g in atlas.groups if g != "NOR"]
        self.panel.set_targets(targets)
        changes: dict[str, Any] = {}
        if self.state.subject_id not in ids:
            nor = [s for s in ids if (atlas.reference(s).group or "NOR") == "NOR"]
            changes["subject_id"] = (nor or list(ids))[0]
        if targets and self.state.target_group not in targets:
            changes["target_group"] = targets[0]
        if changes:
            self.state.update(changes, undoable=False)
        self.request_all()

    def set_image_engine(self, engines: Engines) -> None:
        """Take a SPADE model loaded late (the label VAE is unchanged): update the toggle, and
        draw the image if it is already switched on."""
        had_image = self.engines.spade is not None
        self.engines = engines
        spade = engines.slot("spade")
        note = "" if spade.ready else spade.message
        self.panel.set_available(engines.morph is not None, "", note)
        if spade.ready and not had_image and self.state.show_image and self.available:
            self.request_all()

    @property
    def available(self) -> bool:
        """True when a morph can be computed now."""
        morph = self.engines.morph
        return (
            morph is not None
            and self.state.subject_id in morph.atlas.references
            and (self.state.target_group, "ED") in morph.atlas.stats
        )

    # requests -------------------------------------------------------------------------------
    def _on_state(self, name: str, value: Any) -> None:
        if name == "alpha":
            self.display.update_alpha(value)
        if not self.available:
            return
        if name in PATH_FIELDS:
            self.path.rebuild(self.engines)
        moving = self.panel.playing or self.panel.alpha.isSliderDown()
        if name == "alpha" and moving and self.path.show(value):
            return  # playing or scrubbing: the cached path, no decode
        if name in MORPH_FIELDS:
            self.request_morph()
        if name in CURVE_FIELDS:
            self.request_curve()
        if name in LATENT_FIELDS:
            self.request_latent()

    def request_all(self) -> None:
        """Ask for the morph step, the phenotype curve and the latent view."""
        if self.available:
            self.request_morph()
            self.request_curve()
            self.request_latent()
            self.path.rebuild(self.engines)

    def _settle_alpha(self, playing: bool = False) -> None:
        if self.available and not playing and not self.panel.playing:
            self.request_morph()

    def request_morph(self) -> MorphRequest:
        """Submit the morph step of the current controls."""
        s = self.state
        request = MorphRequest(
            next_request_id(), self.engines, s.morph_query(), s.show_image, s.smoothing
        )
        self.worker.submit(request)
        return request

    def request_curve(self) -> None:
        """Submit the phenotype-vs-alpha curve of the current morph."""
        s = self.state
        self.worker.submit(CurveRequest(next_request_id(), self.engines, s.morph_query()))

    def request_latent(self) -> None:
        """Submit the latent embedding (cohort + morph path)."""
        s = self.state
        self.worker.submit(
            LatentRequest(next_request_id(), self.engines, s.morph_query(), s.embedding)
        )

    # results --------------------------------------------------------------------------------
    def _morph_done(self, result: JobDone) -> None:
        request, shown = result.request, self.display.morph_id
        if not self.worker.is_current(request) and shown is not None and request.request_id < shown:
            return  # an overtaken decode, older than what is on screen
        if self.panel.playing and request.query.alpha != self.state.alpha:
            return  # asked for before Play: the cached path is drawing now
        output = result.value
        self.last_result = result
        self.display.show_morph(output, result.request.request_id)
        if self.on_shown is not None:
            self.on_shown(result)

    def _curve_done(self, result: JobDone) -> None:
        curve: CurveOutput = result.value
        rows = [p.as_dict() for p in curve.phenotypes]
        names = {
            "lvedv_ml": "LVEDV (mL)",
            "lvef": "LVEF (%)",
            "lvm_g": "LV mass (g)",
            "rvedv_ml": "RVEDV (mL)",
            "rvef": "RVEF (%)",
        }
        self.display.views.alpha_curve.set_curves(
            curve.alphas, {label: [r[key] for r in rows] for key, label in names.items()}
        )
        self.display.views.alpha_curve.set_alpha(self.state.alpha)

    def _latent_done(self, result: JobDone) -> None:
        self.display.set_latent(result.value)

    def subject_clicked(self, point_id: str) -> None:
        """A latent-view click: a reference loads that subject, a group sample that target."""
        morph = self.engines.morph
        if morph is None:
            return
        if point_id in morph.atlas.references:
            self.state.set("subject_id", point_id)
        elif " sample " in point_id:
            group = point_id.split(" sample ")[0]
            if group in morph.atlas.groups and group != "NOR":
                self.state.set("target_group", group)
