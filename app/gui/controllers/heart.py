"""Your own heart: File > Open heart, recent files, drag-and-drop, and its own image beside SPADE's.

The heart is read, preprocessed and encoded on the worker (:mod:`cardio_explorer.app.jobs.heart`);
it then joins the morph's subject list, and the subject picker switches to it. Bad files end in
one dialog naming the file and the problem; the window stays as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from cardio_explorer.app.jobs.heart import HeartOutput, HeartRequest
from cardio_explorer.app.jobs.models import ModelSlot
from cardio_explorer.app.jobs.protocol import JobDone, next_request_id
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.label_vae.user import UserHeart, V, join_atlas, to_own_grid
from cardio_explorer.viewer.slice_view import SliceView

if TYPE_CHECKING:
    from cardio_explorer.app.gui.window import MainWindow

RECENT_KEY = "recent/hearts"
MAX_RECENT = 8
HEART_FILTER = "Label NIfTI (*.nii.gz *.nii);;All files (*)"
OWN_IMAGE_TAB = "Your image"


def settings() -> QSettings:
    """The app's settings store (recent files, preferences)."""
    return QSettings("cardio-explorer", "cardio-explorer")


class HeartController(QObject):
    """Opens user hearts (menu, recent list, drops, command line) and shows their images."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.hearts: dict[str, UserHeart] = {}
        self.opened_from: dict[str, tuple[Path, ...]] = {}  # heart id -> the paths it came from
        self._queue: list[tuple[Path, ...]] = []  # hearts of a session, opened one by one
        self._select: str | None = None  # the subject a session shows once its hearts are in
        self.last_request: HeartRequest | None = None
        self.recent_menu: QMenu | None = None
        # a hidden child until a heart with an image arrives (a parentless widget would be a
        # top-level window of its own)
        self.own_image = SliceView(window)
        self.own_image.hide()
        self.own_image.setToolTip(
            "Your heart's own MR image with its labels, beside SPADE's synthetic image"
        )
        self._image_tab_shown = False
        window.router.route("heart", self._heart_done)
        window.worker.failed.connect(self._heart_failed)
        window.setAcceptDrops(True)
        window.installEventFilter(self)
        window.state.subscribe(self._on_state)

    # menu -----------------------------------------------------------------------------------
    def build_menu(self, menu: QMenu) -> None:
        """Put Open heart… and Open recent heart at the top of the File menu."""
        first = menu.actions()[0] if menu.actions() else None
        action = QAction("Open heart…", self.window)
        action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        action.setToolTip(
            "Your own heart: a label NIfTI, an ED/ES pair or an ACDC / M&Ms subject folder"
        )
        action.triggered.connect(lambda _=False: self._guarded(self.open_heart))
        folder = QAction("Open heart folder…", self.window)
        folder.triggered.connect(lambda _=False: self._guarded(self.open_heart_folder))
        self.recent_menu = QMenu("Open recent heart", self.window)
        menu.insertAction(first, action)
        menu.insertAction(first, folder)
        menu.insertMenu(first, self.recent_menu)
        menu.insertSeparator(first)
        self.refresh_recent()

    def _guarded(self, action) -> None:
        try:
            action()
        except CardioInputError as error:
            self.window.report_error("Cannot open heart", str(error))
        except OSError as error:
            self.window.report_error("Cannot open heart", f"{error}")

    def refresh_recent(self) -> None:
        """Rebuild the recent-hearts submenu from the settings."""
        if self.recent_menu is None:
            return
        self.recent_menu.clear()
        entries = recent_hearts()
        for entry in entries:
            paths = [Path(p) for p in entry.split("|")]
            text = " + ".join(p.name for p in paths)
            action = self.recent_menu.addAction(text)
            action.setToolTip(entry.replace("|", "\n"))
            action.triggered.connect(lambda _=False, p=paths: self._guarded(lambda: self.open(p)))
        self.recent_menu.setEnabled(bool(entries))

    # opening --------------------------------------------------------------------------------
    def open_heart(self) -> HeartRequest | None:
        """Ask for one label file or an ED/ES pair, then open it."""
        names, _ = QFileDialog.getOpenFileNames(
            self.window, "Open heart (a label file, or ED and ES files)", "", HEART_FILTER
        )
        return self.open([Path(n) for n in names]) if names else None

    def open_heart_folder(self) -> HeartRequest | None:
        """Ask for an ACDC / M&Ms subject folder, then open it."""
        name = QFileDialog.getExistingDirectory(self.window, "Open heart folder")
        return self.open([Path(name)]) if name else None

    def open(self, paths: Sequence[str | Path]) -> HeartRequest | None:
        """Read, preprocess and encode a heart on the worker; it joins the subject list.
        While another heart is being encoded this one waits (None), so neither is lost."""
        paths = tuple(Path(p) for p in paths)
        if not paths:
            raise CardioInputError("heart", "no file or folder given")
        for path in paths:
            if not path.exists():
                raise CardioInputError(path, "not found")
        if self.window.engines.morph is None:
            raise CardioInputError("heart", "the label VAE model is needed to encode a heart")
        if self.busy:
            self._queue.append(paths)
            self.window.status(f"{paths[0].name} will be read after the heart being encoded")
            return None
        request = HeartRequest(next_request_id(), self.window.engines, paths)
        self.last_request = request
        self.window.worker.submit(request)
        self.window.status(f"reading heart {paths[0].name}…", 15000)
        return request

    def open_guarded(self, paths: Sequence[str | Path]) -> HeartRequest | None:
        """:meth:`open`, with a bad path reported in a dialog instead of raised."""
        try:
            return self.open(paths)
        except CardioInputError as error:
            self.window.report_error("Cannot open heart", str(error))
            return None

    @property
    def busy(self) -> bool:
        """True while a heart is being read and encoded."""
        return self.last_request is not None and not self.window.router.settled("heart")

    def _heart_failed(self, failure) -> None:
        # the error dialog comes from the window; the hearts still waiting go on
        if getattr(failure.request, "lane", None) == "heart" and self._queue:
            QTimer.singleShot(0, lambda: self.open_guarded(self._queue.pop(0)))

    def _heart_done(self, result: JobDone) -> None:
        output: HeartOutput = result.value
        heart = output.heart
        old = self.window.engines.slot("label_vae")
        if old.model is None or old.sha256 != result.request.engines.slot("label_vae").sha256:
            self.window.report_error(
                "Cannot open heart",
                f"{output.paths[0]}: the label VAE changed while the heart was encoded; "
                "open it again",
            )
            return
        # join the atlas as it is now (a cohort may have been opened meanwhile)
        current = old.model
        morph = PathologyMorph(
            current.model,
            join_atlas(current.atlas, heart.reference),
            current.device,
            optimise=False,
            frame=current.frame,
        )
        self.hearts[heart.reference.subject_id] = heart
        self.opened_from[heart.reference.subject_id] = output.paths
        slot = ModelSlot("label_vae", morph, old.path, old.sha256)
        self.window.set_engines(self.window.engines.with_slot(slot))
        if self._queue:  # a session's next heart: it needs the engines that hold this one
            self.open_guarded(self._queue.pop(0))
        elif self._select is not None and self._select in morph.atlas.references:
            self.window.state.set("subject_id", self._select, undoable=False)
            self._select = None
        else:
            self.window.state.set("subject_id", heart.reference.subject_id)
        add_recent(output.paths)
        self.refresh_recent()
        notes = "; ".join(heart.notes)
        self.window.status(
            f"opened heart {heart.reference.subject_id}" + (f" ({notes})" if notes else ""), 15000
        )
        self._show_own_image(heart.reference.subject_id)

    def own_frame_labels(self, labels: V) -> V | None:
        """A user heart's morph step (labels, or its SPADE image) on the grid and affine of the
        user's own file (the shown phase's frame; ED's when ES was estimated); None for an atlas
        subject."""
        heart = self.current_heart()
        if heart is None:
            return None
        raw = heart.raw
        frame = raw.ed_frame if self.window.state.phase == "ED" else raw.es_frame
        like = raw.labels.get(frame if frame is not None else raw.ed_frame)
        return to_own_grid(labels, like) if like is not None else None

    # sessions -------------------------------------------------------------------------------
    def session_entries(self) -> list[list[str]]:
        """The paths of every heart opened (for a session file)."""
        return [[str(p) for p in paths] for paths in self.opened_from.values()]

    def restore(self, entries: Sequence[Sequence[str]] | None, subject_id: str | None) -> None:
        """Open a session's hearts one after the other, then show ``subject_id``."""
        wanted = [tuple(Path(p) for p in entry) for entry in entries or []]
        missing = [p for entry in wanted for p in entry if not p.exists()]
        if missing:
            self.window.report_error(
                "Cannot open heart", f"{missing[0]}: not found (a heart of the session)"
            )
        wanted = [entry for entry in wanted if all(p.exists() for p in entry)]
        if not wanted:
            return
        self._queue, self._select = wanted[1:], subject_id
        self.open_guarded(wanted[0])

    # own image ------------------------------------------------------------------------------
    def current_heart(self) -> UserHeart | None:
        """The user heart being morphed, or None for an atlas subject."""
        return self.hearts.get(self.window.state.subject_id or "")

    def _on_state(self, name: str, value) -> None:
        if name in ("subject_id", "phase"):
            self._show_own_image(self.window.state.subject_id)

    def _show_own_image(self, subject_id: str | None) -> None:
        heart = self.hearts.get(subject_id or "")
        prepared = heart.prepared if heart is not None else None
        phase = self.window.state.phase
        frame = None
        if prepared is not None:
            frame = prepared.ed_frame if phase == "ED" else prepared.es_frame
        image = prepared.images.get(frame) if prepared is not None and frame is not None else None
        plots = self.window.plots
        if image is None:
            self.own_image.set_volumes(None, None)
            return
        self.own_image.set_volumes(prepared.labels[frame], image)
        if not self._image_tab_shown:
            plots.addTab(self.own_image, OWN_IMAGE_TAB)
            plots.setCurrentWidget(self.own_image)  # the first time: show what was opened
            self._image_tab_shown = True

    # drag and drop --------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Accept dragged files and folders on the window; a drop opens them as a heart."""
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if _local_paths(event.mimeData()):
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            paths = _local_paths(event.mimeData())
            if paths:
                event.acceptProposedAction()
                self.open_guarded(paths)
                return True
        return super().eventFilter(watched, event)


def _local_paths(mime) -> list[Path]:
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


def recent_hearts() -> list[str]:
    """Recently opened hearts, newest first; each entry: paths joined by '|'."""
    value = settings().value(RECENT_KEY, [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or []) if v]


def add_recent(paths: Sequence[Path]) -> None:
    """Put a heart at the top of the recent list (at most MAX_RECENT kept)."""
    entry = "|".join(str(Path(p).resolve()) for p in paths)
    entries = [e for e in recent_hearts() if e != entry]
    settings().setValue(RECENT_KEY, [entry, *entries][:MAX_RECENT])


def own_image_widget(window: QWidget) -> SliceView | None:
    """The 'Your image' view of a window (tests)."""
    controller = getattr(window, "hearts", None)
    return None if controller is None else controller.own_image
