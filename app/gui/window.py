"""The main window: 3D heart in the centre, slices beside it, latent space and plots below.

The window owns the state, the worker and the views, and wires the controllers to them. It
runs no engine code itself: every control change becomes a request for the worker thread.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
)

from cardio_explorer.app.gui.controllers.aids import install_aids
from cardio_explorer.app.gui.controllers.conditions import ConditionsPanel, SequenceController
from cardio_explorer.app.gui.controllers.export import ExportController
from cardio_explorer.app.gui.controllers.heart import HeartController
from cardio_explorer.app.gui.controllers.help import HelpController
from cardio_explorer.app.gui.controllers.morph import MorphController, MorphPanel
from cardio_explorer.app.gui.controllers.movie import MovieController
from cardio_explorer.app.gui.controllers.playback import PlaybackBar
from cardio_explorer.app.gui.controllers.readouts import ReadoutBox
from cardio_explorer.app.gui.controllers.view3d import SurfaceControls
from cardio_explorer.app.gui.display import Display, Views
from cardio_explorer.app.gui.layout import DEFAULT_SIZE, build_central, fit_to_screen
from cardio_explorer.app.gui.workers import CoalescingWorker, ResultRouter, run_request
from cardio_explorer.app.jobs.models import KINDS, Engines, ModelsRequest, load_slot
from cardio_explorer.app.jobs.protocol import JobDone, JobFailed, next_request_id
from cardio_explorer.app.jobs.runner import BACKGROUND_LANES, LANES
from cardio_explorer.app.jobs.session import Session, checkpoint_mismatches
from cardio_explorer.app.jobs.session_check import check_fits
from cardio_explorer.app.jobs.state import AppState
from cardio_explorer.engine.device import current_precision, describe
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.viewer.heart_view import HeartView
from cardio_explorer.viewer.latent_view import LatentView
from cardio_explorer.viewer.plots import PhenotypeAlphaView, SweepView, VolumeCurveView
from cardio_explorer.viewer.slice_view import LongAxisView, SliceView

log = logging.getLogger(__name__)

MORPH_TAB, CONDITIONS_TAB = 0, 1


class MainWindow(QMainWindow):
    """cardio-explorer's window. ``engines``: the loaded models (missing ones say why)."""

    def __init__(
        self,
        engines: Engines,
        state: AppState | None = None,
        runner=run_request,
        launch_time: float | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("cardio-explorer")
        self.engines = engines
        self.state = state or AppState()
        self.launch_time = time.perf_counter() if launch_time is None else launch_time
        self.first_heart_s: float | None = None
        self.error_boxes: list[QMessageBox] = []
        self.errors: list[str] = []
        self.worker = CoalescingWorker(runner, LANES, self)
        self.router = ResultRouter(self.worker, self._job_failed, self._job_progress, self)
        self.views = Views(
            heart=HeartView(),
            slice=SliceView(),
            long_axis=LongAxisView(),
            latent=LatentView(),
            alpha_curve=PhenotypeAlphaView(),
            volume_curve=VolumeCurveView(),
            sweep=SweepView(),
            readouts=ReadoutBox(),
        )
        self.display = Display(self.views, self.state)
        self.morph_panel = MorphPanel(self.state)
        self.conditions_panel = ConditionsPanel(self.state)
        self.playback = PlaybackBar(self.state)
        self.surface_controls = SurfaceControls(self.views.heart, self.display, self.state)
        self.morph = MorphController(
            self.state, self.morph_panel, self.display, self.worker, self.router, engines, self
        )
        self.sequences = SequenceController(
            self.state, self.conditions_panel, self.display, self.worker, self.router, engines, self
        )
        self.morph.on_shown = self._morph_shown
        self.morph.path.on_progress = self._path_progress
        self.sequences.on_sequence = self._sequence_shown
        self.exports = ExportController(self, self)
        self.hearts = HeartController(self)
        self.help = HelpController(self)
        self.movies = MovieController(self, self)
        self.router.route("models", self._models_loaded)
        self._build_layout()
        self._build_menus()
        self._build_status_bar()
        self._build_shortcuts()
        self.aids = install_aids(self)
        self.views.latent.subject_clicked.connect(self._latent_clicked)
        self.views.volume_curve.frame_selected.connect(self._frame_selected)
        self.views.heart.rendered.connect(self._rendered)
        self.state.subscribe(self._on_state)
        self.fit_to_screen()
        self.set_engines(engines)

    # layout ---------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        self.tabs, self.plots, main = build_central(self)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.setCentralWidget(main)
        self._sync_playback_bar()

    def fit_to_screen(self, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> None:
        """Resize to ``width`` x ``height``, or to the screen's free area where that is smaller."""
        fit_to_screen(self, width, height)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.exports.build_menu(file_menu)
        self.hearts.build_menu(file_menu)
        self.movies.build_menu(file_menu)
        edit = self.menuBar().addMenu("&Edit")
        self.undo_action = QAction("Undo control change", self)
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.undo_action.triggered.connect(self.state.undo)
        self.redo_action = QAction("Redo control change", self)
        self.redo_action.setShortcut(QKeySequence("Ctrl+Shift+Z"))
        self.redo_action.triggered.connect(self.state.redo)
        edit.addAction(self.undo_action)
        edit.addAction(self.redo_action)
        view = self.menuBar().addMenu("&View")
        group = QActionGroup(self)
        self.embedding_actions: dict[str, QAction] = {}
        for key, text in (
            ("pca", "Latent embedding: PCA (fast)"),
            ("tsne", "Latent embedding: t-SNE"),
        ):
            action = QAction(text, self, checkable=True)
            action.setChecked(self.state.embedding == key)
            action.triggered.connect(lambda _=False, k=key: self.state.set("embedding", k))
            group.addAction(action)
            view.addAction(action)
            self.embedding_actions[key] = action
        reset = QAction("Reset 3D view\tR", self)  # R itself is a window shortcut
        reset.triggered.connect(self.views.heart.reset_camera)
        view.addAction(reset)
        self.help.build_menus(self.menuBar(), edit)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel()
        self.inference_label = QLabel("inference – ms")
        self.render_label = QLabel("render – ms")
        self.path_label = QLabel()  # how much of the morph path is cached for playback
        widest = {
            self.path_label: "caching morph path 21/21",
            self.inference_label: "inference 8888 ms · surfaces 888 ms",
            self.render_label: "render 8888 ms",
        }
        for label, text in widest.items():
            label.setFixedWidth(label.fontMetrics().horizontalAdvance(text) + 8)  # no jitter
            bar.addPermanentWidget(label)
        bar.addPermanentWidget(self.device_label)

    def _build_shortcuts(self) -> None:
        for keys, slot in (("Space", self.toggle_play), ("R", self.views.heart.reset_camera)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)

    # engines --------------------------------------------------------------------------------
    def set_engines(self, engines: Engines) -> None:
        """Use other models everywhere; panels without their model say how to get it."""
        self.engines = engines
        device = engines.device
        self.device_label.setText(f"{describe(device)}, {current_precision(device)}")
        self.morph.set_engines(engines)
        self.sequences.set_engines(engines)
        if engines.morph is None and engines.cheart is not None and self.display.scene is None:
            # no label VAE: show a generated heartbeat instead, so a heart is still on screen
            self.tabs.setCurrentIndex(CONDITIONS_TAB)
            self.sequences.generate()

    def load_pending_models(self, paths: dict[str, Path | None]) -> ModelsRequest | None:
        """Load the kinds still marked loading on the worker (after the first heart's request,
        which has a higher lane priority); ``paths``: given checkpoints, None for bundled."""
        kinds = [kind for kind in KINDS if self.engines.slot(kind).loading]
        if not kinds:
            return None
        request = ModelsRequest(
            next_request_id(),
            self.engines.device,
            tuple((kind, paths.get(kind)) for kind in kinds),
        )
        self.worker.submit(request)
        return request

    def _models_loaded(self, result: JobDone) -> None:
        engines = self.engines
        for slot in result.value:
            # a checkpoint opened meanwhile (File > Open, a session) wins over the late default
            if engines.slot(slot.kind).loading:
                engines = engines.with_slot(slot)
        if engines is self.engines:
            return
        if engines.morph is None:
            self.set_engines(engines)  # nothing morphs: a generated heartbeat may now be shown
            return
        self.engines = engines
        self.sequences.set_engines(engines)
        self.morph.set_image_engine(engines)

    # state and results ----------------------------------------------------------------------
    def _on_state(self, name: str, value: Any) -> None:
        if name == "frame":
            self.display.show_frame(value)

    def _tab_changed(self, index: int) -> None:
        if index in (MORPH_TAB, CONDITIONS_TAB):
            self.display.activate("sequence" if index == CONDITIONS_TAB else "morph")
            self._sync_plot_tab()
        self._sync_playback_bar()

    def _sync_playback_bar(self) -> None:
        """The heartbeat bar drives CHeart's sequence: shown on its tab (one Play per tab)."""
        index = self.tabs.currentIndex()
        sequence = index == CONDITIONS_TAB or (
            index != MORPH_TAB and self.display.scene == "sequence"
        )
        if not sequence:
            self.playback.set_playing(False)
        self.playback.setVisible(sequence)

    def _sync_plot_tab(self) -> None:
        """The curve of the scene on screen: volume-time for a sequence, phenotype vs alpha."""
        views, current = self.views, self.plots.currentWidget()
        if self.display.scene == "sequence" and current is views.alpha_curve:
            self.plots.setCurrentWidget(views.volume_curve)
        elif self.display.scene == "morph" and current is views.volume_curve:
            self.plots.setCurrentWidget(views.alpha_curve)

    def _morph_shown(self, result: JobDone) -> None:
        output = result.value
        self.inference_label.setText(
            f"inference {output.inference_ms:.0f} ms · surfaces {output.surface_ms:.0f} ms"
        )
        self._sync_plot_tab()
        self._first_heart()

    def _sequence_shown(self, result: JobDone) -> None:
        output = result.value
        sample = self.display.sample
        self.inference_label.setText(f"inference {output.inference_ms:.0f} ms")
        if sample is not None:
            self.playback.set_sequence(
                sample.labels.n_frames, sample.labels.frame_duration_ms, 0, sample.es_frame
            )
            if sample.warnings:
                self.status("; ".join(sample.warnings))
        if self.tabs.currentIndex() != CONDITIONS_TAB:
            self.tabs.blockSignals(True)
            self.tabs.setCurrentIndex(CONDITIONS_TAB)
            self.tabs.blockSignals(False)
        self._sync_playback_bar()
        self._sync_plot_tab()
        self._first_heart()

    def _first_heart(self) -> None:
        if self.first_heart_s is None:
            self.views.heart.render()
            self.first_heart_s = time.perf_counter() - self.launch_time
            log.info("first heart drawn %.2f s after launch", self.first_heart_s)

    def _path_progress(self, text: str) -> None:
        self.path_label.setText(text)

    def _rendered(self, ms: float) -> None:
        self.render_label.setText(f"render {ms:.0f} ms")

    def _latent_clicked(self, point_id: str) -> None:
        if self.display.scene == "sequence" and point_id.startswith("sample "):
            parts = point_id.split()
            self.state.update(
                {"sample_index": int(parts[1]) - 1, "frame": int(parts[3]) - 1}, undoable=False
            )
        else:
            self.morph.subject_clicked(point_id)

    def _frame_selected(self, frame: int) -> None:
        self.state.set("frame", frame)

    def toggle_play(self) -> None:
        """Space: play / pause the heartbeat, or the alpha sweep in the morph scene."""
        if self.display.scene == "sequence":
            self.playback.toggle()
        else:
            self.morph_panel.set_playing(not self.morph_panel.playing)

    # errors and messages --------------------------------------------------------------------
    def status(self, message: str, timeout_ms: int = 8000) -> None:
        """A transient status-bar message."""
        self.statusBar().showMessage(message, timeout_ms)

    def report_error(self, title: str, message: str) -> QMessageBox:
        """Status bar + a non-blocking dialog: every user-facing error ends here."""
        log.error("%s: %s", title, message)
        self.errors.append(message)
        self.status(f"{title}: {message}", 15000)
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self
        )
        box.finished.connect(lambda _=0, b=box: self._forget_box(b))
        self.error_boxes.append(box)
        box.open()
        return box

    def _forget_box(self, box: QMessageBox) -> None:
        if box in self.error_boxes:
            self.error_boxes.remove(box)
        box.deleteLater()

    def _job_failed(self, failure: JobFailed) -> None:
        if isinstance(failure.error, CardioInputError):
            title = getattr(failure.request, "error_title", "Cannot compute that")
            self.report_error(title, str(failure.error))
        else:
            log.error("worker job failed:\n%s", failure.trace)
            self.report_error(
                "Unexpected error", f"{type(failure.error).__name__}: {failure.error}"
            )

    def _job_progress(self, request: Any, message: str) -> None:
        self.status(message, 3000)
        if getattr(request, "lane", None) == "latent":
            self.views.latent.set_status(message)  # cleared when the layout arrives

    # sessions -------------------------------------------------------------------------------
    def apply_session(self, session: Session, source: str | Path = "session") -> list[str]:
        """Load the session's checkpoints where needed, then its controls, camera and scene.

        A subject, group or frame the models lack raises before anything has changed.
        """
        notes = []
        engines = self.engines
        for kind in KINDS:
            saved = session.checkpoints.get(kind)
            if not saved:
                continue
            slot = engines.slot(kind)
            if slot.ready and saved.get("sha256") == slot.sha256:
                continue
            try:
                engines = engines.with_slot(load_slot(kind, saved["path"], engines.device))
            except (CardioInputError, KeyError) as error:
                notes.append(f"{kind}: {error}")
        # a subject or frame the models lack refuses the session before anything changes
        check_fits(session.controls, engines, source, bool(session.extra.get("hearts")))
        if engines is not self.engines:
            self.set_engines(engines)
        notes.extend(checkpoint_mismatches(session, self.engines))
        self.state.restore(session.controls)
        self.hearts.restore(session.extra.get("hearts"), session.controls.get("subject_id"))
        if session.camera:
            self.display.remember_camera(session.scene or "morph", session.camera)
        if session.scene == "sequence" and self.engines.cheart is not None:
            self.tabs.setCurrentIndex(CONDITIONS_TAB)
            self.sequences.generate()
        if notes:
            self.status("; ".join(notes), 15000)
        return notes

    # lifetime -------------------------------------------------------------------------------
    def settled(self) -> bool:
        """True when the newest request of every lane has come back and nothing is running."""
        # the morph path cache builds in the background and may take seconds: not waited for
        busy = self.worker.busy_lanes().difference(BACKGROUND_LANES)
        foreground = (lane for lane in LANES if lane not in BACKGROUND_LANES)
        return not busy and all(self.router.settled(lane) for lane in foreground)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop timers and the worker, then release the VTK render window."""
        self.playback.set_playing(False)
        self.morph_panel.set_playing(False)
        self.worker.stop()
        self.views.heart.finalize()
        super().closeEvent(event)
