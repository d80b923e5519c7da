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
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cardio_explorer.app.controllers.conditions import ConditionsPanel, SequenceController
from cardio_explorer.app.controllers.export import ExportController
from cardio_explorer.app.controllers.morph import MorphController, MorphPanel
from cardio_explorer.app.controllers.playback import PlaybackBar
from cardio_explorer.app.controllers.readouts import ReadoutBox
from cardio_explorer.app.controllers.view3d import SurfaceControls
from cardio_explorer.app.display import Display, Views
from cardio_explorer.app.engines import KINDS, Engines, ModelsRequest, load_slot
from cardio_explorer.app.runner import LANES, run_request
from cardio_explorer.app.session import Session, checkpoint_mismatches
from cardio_explorer.app.state import AppState
from cardio_explorer.app.workers import (
    CoalescingWorker,
    JobDone,
    JobFailed,
    ResultRouter,
    next_request_id,
)
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
            alpha_curve=PhenotypeAlphaView(y_label="phenotype"),
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
        self.sequences.on_sequence = self._sequence_shown
        self.exports = ExportController(self)
        self.router.route("models", self._models_loaded)
        self._build_layout()
        self._build_menus()
        self._build_status_bar()
        self._build_shortcuts()
        self.views.latent.subject_clicked.connect(self._latent_clicked)
        self.views.volume_curve.frame_selected.connect(self._frame_selected)
        self.views.heart.rendered.connect(self._rendered)
        self.state.subscribe(self._on_state)
        self.resize(1400, 900)
        self.set_engines(engines)

    # layout ---------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.addTab(self.morph_panel, "Pathology morph")
        self.tabs.addTab(self.conditions_panel, "Clinical conditions")
        self.tabs.addTab(self.surface_controls, "3D view")
        self.tabs.currentChanged.connect(self._tab_changed)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.tabs, 1)
        left_layout.addWidget(self.views.readouts)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)
        scroll.setMinimumWidth(380)

        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.views.heart, 1)
        centre_layout.addWidget(self.playback)

        slices = QSplitter(Qt.Orientation.Vertical)
        slices.addWidget(self.views.slice)
        slices.addWidget(self.views.long_axis)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(scroll)
        top.addWidget(centre)
        top.addWidget(slices)
        top.setStretchFactor(1, 3)
        top.setStretchFactor(2, 2)
        top.setSizes([390, 600, 410])

        self.plots = QTabWidget()
        self.plots.addTab(self.views.alpha_curve, "Phenotype vs alpha")
        self.plots.addTab(self.views.volume_curve, "Volume curve")
        self.plots.addTab(self.views.sweep, "Condition sweep")
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.views.latent)
        bottom.addWidget(self.plots)
        bottom.setSizes([700, 700])

        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(top)
        main.addWidget(bottom)
        main.setStretchFactor(0, 3)
        main.setStretchFactor(1, 2)
        main.setSizes([560, 300])
        self.setCentralWidget(main)

    def _build_menus(self) -> None:
        self.exports.build_menu(self.menuBar().addMenu("&File"))
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
        reset = QAction("Reset 3D view", self)
        reset.triggered.connect(self.views.heart.reset_camera)
        view.addAction(reset)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel()
        self.inference_label = QLabel("inference – ms")
        self.render_label = QLabel("render – ms")
        for label in (self.inference_label, self.render_label, self.device_label):
            bar.addPermanentWidget(label)

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
        self._sync_plot_tab()
        self._first_heart()

    def _first_heart(self) -> None:
        if self.first_heart_s is None:
            self.views.heart.render()
            self.first_heart_s = time.perf_counter() - self.launch_time
            log.info("first heart drawn %.2f s after launch", self.first_heart_s)

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
            self.report_error("Cannot compute that", str(failure.error))
        else:
            log.error("worker job failed:\n%s", failure.trace)
            self.report_error(
                "Unexpected error", f"{type(failure.error).__name__}: {failure.error}"
            )

    def _job_progress(self, request: Any, message: str) -> None:
        self.status(message, 3000)

    # sessions -------------------------------------------------------------------------------
    def apply_session(self, session: Session) -> list[str]:
        """Load the session's checkpoints where needed, then its controls, camera and scene."""
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
        if engines is not self.engines:
            self.set_engines(engines)
        notes.extend(checkpoint_mismatches(session, self.engines))
        self.state.restore(session.controls)
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
        return self.worker.idle and all(self.router.settled(lane) for lane in LANES)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop timers and the worker, then release the VTK render window."""
        self.playback.set_playing(False)
        self.morph_panel.set_playing(False)
        self.worker.stop()
        self.views.heart.finalize()
        super().closeEvent(event)
