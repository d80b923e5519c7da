"""File menu: open checkpoints and cohorts, export what is shown, screenshots, sessions.

Every action has a method taking an explicit path (scripts and tests call these); the menu
asks for the path with a file dialog first. Bad input ends in one clear error dialog.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox, QWidget

from cardio_explorer.app.gui.host import Host
from cardio_explorer.app.jobs.models import CheckpointRequest, ModelSlot
from cardio_explorer.app.jobs.morph import (
    CohortOutput,
    CohortRequest,
    SeriesRequest,
    on_source_grid,
)
from cardio_explorer.app.jobs.protocol import JobDone, next_request_id
from cardio_explorer.app.jobs.session import (
    Session,
    checkpoint_mismatches,
    checkpoints_of,
    read_session,
    write_session,
)
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.nifti import (
    nifti_stem,
    write_image_volume,
    write_label_table,
    write_label_volume,
)
from cardio_explorer.engine.labels import FILES_HOLD_ACDC_VALUES, LABEL_TABLE
from cardio_explorer.viewer.screenshot import save_screenshot
from cardio_explorer.viewer.surfaces import EXPORT_FORMATS, export_surfaces

NIFTI_FILTER = "NIfTI (*.nii.gz *.nii)"
LABEL_TABLE_FILTERS = "ITK-SNAP label description (*.txt);;3D Slicer colour table (*.ctbl)"
DEFAULT_SERIES_STEPS = 11


def _with_nifti_suffix(path: Path) -> Path:
    name = path.name.lower()
    return path if name.endswith((".nii.gz", ".nii")) else path.with_name(path.name + ".nii.gz")


class ExportController(QObject):
    """The File menu's actions, each reporting success in the status bar and errors in a dialog.

    ``host`` is the app state and services (the window provides them); ``parent`` owns the
    dialogs and actions.
    """

    def __init__(self, host: Host, parent: QWidget) -> None:
        super().__init__(parent)
        self.host = host
        self.parent_widget = parent
        self.cohort_subjects: dict = {}
        self.cohort_folder: Path | None = None
        self.last_series: tuple[Path, ...] = ()
        host.router.route("cohort", self._cohort_done)
        host.router.route("export", self._series_done)
        host.router.route("checkpoint", self._checkpoint_opened)

    # menu -----------------------------------------------------------------------------------
    def build_menu(self, menu: QMenu) -> None:
        """Fill the File menu."""
        entries: list[tuple[str, Callable[[], object], QKeySequence | None]] = [
            ("Open checkpoint…", self.open_checkpoint, QKeySequence(QKeySequence.StandardKey.Open)),
            ("Open cohort folder…", self.open_cohort, None),
            ("", None, None),
            ("Export labels (NIfTI)…", self.export_labels, None),
            ("Export image (NIfTI)…", self.export_image, None),
            ("Export sequence (NIfTI)…", self.export_sequence, None),
            ("Export all surfaces (VTP/STL/OBJ)…", self.export_surfaces, None),
            ("Export morph path…", self.export_morph_path, None),
            ("Export label table (ITK-SNAP / 3D Slicer)…", self.export_label_table, None),
            ("", None, None),
            ("Save screenshot…", self.save_screenshot, QKeySequence("Ctrl+S")),
            ("Save session…", self.save_session, None),
            ("Open session…", self.open_session, None),
            ("", None, None),
            ("Quit", self.host.close, QKeySequence(QKeySequence.StandardKey.Quit)),
        ]
        for text, slot, keys in entries:
            if not text:
                menu.addSeparator()
                continue
            action = QAction(text, self.parent_widget)
            if keys is not None:
                action.setShortcut(keys)
            action.triggered.connect(lambda _=False, s=slot: self._guarded(s))
            menu.addAction(action)

    def _guarded(self, action: Callable[[], object]) -> None:
        try:
            action()
        except CardioInputError as error:
            self.host.report_error("Cannot do that", str(error))
        except OSError as error:
            self.host.report_error("File error", str(error))

    def _ask_save(self, title: str, filter_: str, default: str) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self.parent_widget, title, default, filter_)
        return Path(name) if name else None

    def _ask_open(self, title: str, filter_: str) -> Path | None:
        name, _ = QFileDialog.getOpenFileName(self.parent_widget, title, "", filter_)
        return Path(name) if name else None

    def _ask_folder(self, title: str) -> Path | None:
        name = QFileDialog.getExistingDirectory(self.parent_widget, title)
        return Path(name) if name else None

    # opening --------------------------------------------------------------------------------
    def open_checkpoint(self, path: str | Path | None = None) -> CheckpointRequest | None:
        """Load a label VAE, CHeart or SPADE checkpoint (kind from its header) on the worker,
        with progress in the status bar; an error ends in a dialog. None when nothing was asked."""
        if path is None:
            path = self._ask_open("Open checkpoint", "Checkpoints (*.safetensors)")
            if path is None:
                return None
        path = Path(path)
        if not path.is_file():  # said at once, before any work
            error = CardioInputError(path, "checkpoint file not found")
            self.host.report_error("Cannot open checkpoint", str(error))
            return None
        request = CheckpointRequest(next_request_id(), self.host.engines.device, path)
        self.host.worker.submit(request)
        self.host.status(f"opening checkpoint {path.name}…")
        return request

    def _checkpoint_opened(self, result: JobDone) -> None:
        slot: ModelSlot = result.value
        self.host.set_engines(self.host.engines.with_slot(slot))
        self.host.status(f"loaded {slot.kind} checkpoint {Path(result.request.path).name}")

    def open_cohort(self, folder: str | Path | None = None) -> CohortRequest | None:
        """Encode a cohort folder in the worker; its subjects become morph sources."""
        if folder is None:
            folder = self._ask_folder("Open cohort folder")
            if folder is None:
                return None
        if self.host.engines.morph is None:
            raise CardioInputError("cohort", "load a label VAE checkpoint first")
        request = CohortRequest(next_request_id(), self.host.engines, Path(folder))
        self.host.worker.submit(request)
        self.host.status(f"reading cohort {folder}…")
        return request

    def _cohort_done(self, result: JobDone) -> None:
        output: CohortOutput = result.value
        old = self.host.engines.slot("label_vae")
        slot = ModelSlot("label_vae", output.morph, old.path, old.sha256)
        self.cohort_subjects, self.cohort_folder = output.subjects, output.folder
        self.host.set_engines(self.host.engines.with_slot(slot))
        note = f" ({len(output.notes)} notes)" if output.notes else ""
        self.host.status(f"cohort {output.folder.name}: {len(output.subjects)} subjects{note}")

    # exports --------------------------------------------------------------------------------
    def export_labels(self, path: str | Path | None = None) -> Path | None:
        """The shown 3D labels as NIfTI (+ an ITK-SNAP label table beside it)."""
        labels = self.host.display.current_labels()
        if labels is None:
            raise CardioInputError("export", "nothing is shown yet")
        if path is None:
            path = self._ask_save("Export labels", NIFTI_FILTER, "labels.nii.gz")
            if path is None:
                return None
        path = _with_nifti_suffix(Path(path))
        own = (
            self.host.hearts.own_frame_labels(labels)
            if self.host.display.scene == "morph"
            else None
        )
        # a heart morphed from the user's file goes back onto that file's grid
        written = write_label_volume(
            own or on_source_grid(labels), path, acdc_labels=FILES_HOLD_ACDC_VALUES
        )
        write_label_table(
            path.with_name(nifti_stem(path) + "_labels.txt"), acdc_labels=FILES_HOLD_ACDC_VALUES
        )
        where = " on your heart's own grid" if own is not None else ""
        self.host.status(f"wrote {written}{where}")
        return written

    def export_image(self, path: str | Path | None = None) -> Path | None:
        """The shown synthesised image as NIfTI."""
        image = self.host.display.current_image()
        if image is None:
            raise CardioInputError("export", "no image is shown: turn on Show image (SPADE)")
        if path is None:
            path = self._ask_save("Export image", NIFTI_FILTER, "image.nii.gz")
            if path is None:
                return None
        own = (
            self.host.hearts.own_frame_labels(image) if self.host.display.scene == "morph" else None
        )
        written = write_image_volume(own or image, _with_nifti_suffix(Path(path)))
        where = " on your heart's own grid" if own is not None else ""
        self.host.status(f"wrote {written}{where}")
        return written

    def export_sequence(self, path: str | Path | None = None) -> Path | None:
        """The shown 3D+t sequence (time last, frame duration in pixdim[4]) and its image."""
        sample = self.host.display.sample
        if sample is None:
            raise CardioInputError("export", "no sequence yet: generate or complete one")
        if path is None:
            path = self._ask_save("Export sequence", NIFTI_FILTER, "sequence.nii.gz")
            if path is None:
                return None
        path = _with_nifti_suffix(Path(path))
        written = write_label_volume(sample.labels, path, acdc_labels=FILES_HOLD_ACDC_VALUES)
        write_label_table(
            path.with_name(nifti_stem(path) + "_labels.txt"), acdc_labels=FILES_HOLD_ACDC_VALUES
        )
        if sample.image is not None:
            write_image_volume(sample.image, path.with_name(nifti_stem(path) + "_image.nii.gz"))
        self.host.status(f"wrote {written}")
        return written

    def surface_prefix(self) -> str:
        """What the shown surfaces are, for their file names: subject, group, target, alpha,
        seed and phase of a morph; conditions, sample and frame of a heartbeat."""
        state, display = self.host.state, self.host.display
        if display.scene == "sequence":
            c = state.conditions
            who = f"cheart_{c.sex}{c.age:.0f}y{c.height:.0f}cm{c.weight:.0f}kg{c.sbp:.0f}mmHg"
            return f"{who}_sample{state.sample_index + 1}_frame{state.frame:02d}_"
        morph = self.host.engines.morph
        subject = state.subject_id or "subject"
        group = "NOR"
        if morph is not None and subject in morph.atlas.references:
            group = morph.atlas.reference(subject).group or "NOR"
        alpha = round(100 * state.alpha)
        safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in subject)
        return (
            f"{safe}_{group}_to{state.target_group}_alpha{alpha:03d}"
            f"_seed{state.seed}_{state.phase}_"
        )

    def export_surfaces(
        self,
        folder: str | Path | None = None,
        fmt: str | None = None,
        overwrite: bool | None = None,
    ) -> list[Path] | None:
        """The shown surfaces, one file per structure, in the NIfTI's world frame (mm), named
        after what they show; existing files are replaced only when ``overwrite`` (None: ask)."""
        surfaces = self.host.display.current_surfaces()
        if surfaces is None:
            raise CardioInputError("export", "nothing is shown yet")
        if folder is None:
            folder = self._ask_folder("Export surfaces into folder")
            if folder is None:
                return None
        if fmt is None:
            fmt, ok = QInputDialog.getItem(
                self.parent_widget, "Surface format", "Format", list(EXPORT_FORMATS), 0, False
            )
            if not ok:
                return None
        prefix = self.surface_prefix()
        names = [f"{prefix}{LABEL_TABLE.name(int(v))}.{fmt.lower()}" for v in surfaces]
        existing = [n for n in names if (Path(folder) / n).exists()]
        if existing and overwrite is None:
            answer = QMessageBox.question(
                self.parent_widget,
                "Replace files?",
                f"{len(existing)} of these files exist in {folder}:\n"
                + "\n".join(existing)
                + "\n\nReplace them?",
            )
            overwrite = answer == QMessageBox.StandardButton.Yes
        if existing and not overwrite:
            self.host.status("surface export cancelled: nothing was replaced")
            return None
        written = export_surfaces(surfaces, folder, fmt, prefix=prefix)
        self.host.status(f"wrote {len(written)} surfaces to {folder}")
        return written

    def export_morph_path(
        self, folder: str | Path | None = None, n_steps: int | None = None
    ) -> SeriesRequest | None:
        """Write the morph at N alphas from 0 to 1 as a NIfTI series (in the worker)."""
        state = self.host.state
        if self.host.engines.morph is None or state.subject_id is None:
            raise CardioInputError("export", "no label VAE model to morph with")
        if folder is None:
            folder = self._ask_folder("Export morph path into folder")
            if folder is None:
                return None
        if n_steps is None:
            n_steps, ok = QInputDialog.getInt(
                self.parent_widget, "Morph path", "Steps", DEFAULT_SERIES_STEPS, 2, 101
            )
            if not ok:
                return None
        request = SeriesRequest(
            next_request_id(), self.host.engines, state.morph_query(), int(n_steps), Path(folder)
        )
        self.host.worker.submit(request)
        return request

    def _series_done(self, result: JobDone) -> None:
        self.last_series = tuple(result.value)
        self.host.status(f"wrote the morph path: {len(self.last_series) - 1} steps")

    def export_label_table(self, path: str | Path | None = None) -> Path | None:
        """Label names and colours: ITK-SNAP .txt, or a 3D Slicer .ctbl by the suffix."""
        if path is None:
            name, chosen = QFileDialog.getSaveFileName(
                self.parent_widget, "Export label table", "labels.txt", LABEL_TABLE_FILTERS
            )
            if not name:
                return None
            path = Path(name)
            if chosen == LABEL_TABLE_FILTERS.split(";;")[1] and path.suffix.lower() != ".ctbl":
                path = path.with_name(path.name + ".ctbl")
        written = write_label_table(path, acdc_labels=FILES_HOLD_ACDC_VALUES)
        self.host.status(f"wrote {written}")
        return written

    def save_screenshot(self, path: str | Path | None = None) -> Path | None:
        """The window with the 3D pixels, as PNG / JPEG / BMP."""
        if path is None:
            path = self._ask_save("Save screenshot", "Images (*.png *.jpg *.bmp)", "heart.png")
            if path is None:
                return None
        written = save_screenshot(self.parent_widget, path)
        self.host.status(f"wrote {written}")
        return written

    # sessions -------------------------------------------------------------------------------
    def current_session(self) -> Session:
        """The session describing the current view."""
        window = self.host
        return Session(
            checkpoints=checkpoints_of(window.engines),
            controls=window.state.snapshot(),
            camera=window.views.heart.camera(),
            scene=window.display.scene,
            cohort=str(self.cohort_folder) if self.cohort_folder else None,
            extra={"hearts": window.hearts.session_entries()},
        )

    def save_session(self, path: str | Path | None = None) -> Path | None:
        """Write the session JSON."""
        if path is None:
            path = self._ask_save("Save session", "Sessions (*.json)", "session.json")
            if path is None:
                return None
        written = write_session(self.current_session(), path)
        self.host.status(f"wrote {written}")
        return written

    def open_session(self, path: str | Path | None = None) -> list[str] | None:
        """Restore checkpoints (when they exist and differ), controls, camera and scene."""
        if path is None:
            path = self._ask_open("Open session", "Sessions (*.json)")
            if path is None:
                return None
        try:
            return self.host.apply_session(read_session(path), path)
        except CardioInputError as error:
            self.host.report_error("Cannot open session", str(error))
            return None

    def session_notes(self, session: Session) -> list[str]:
        """Checkpoint differences between a session and what is loaded."""
        return checkpoint_mismatches(session, self.host.engines)
