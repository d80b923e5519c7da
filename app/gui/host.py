"""What controllers use of the main window, as a protocol: they name it, not the window.

The window (app/gui/window.py) builds the controllers and satisfies :class:`Host` without
importing this module's users back, so no controller imports the window (no import cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from PySide6.QtWidgets import QMessageBox

from cardio_explorer.app.gui.display import Display, Views
from cardio_explorer.app.gui.workers import CoalescingWorker, ResultRouter
from cardio_explorer.app.jobs.models import Engines
from cardio_explorer.app.jobs.session import Session
from cardio_explorer.app.jobs.state import AppState


class OwnHearts(Protocol):
    """The user's opened hearts, as far as exports and sessions need them."""

    def own_frame_labels(self, volume: Any) -> Any:
        """A volume on the grid of the user's heart it was morphed from (None if not one)."""
        ...

    def session_entries(self) -> list[list[str]]:
        """The opened hearts, for a session file."""
        ...


class Host(Protocol):
    """The app state and services a controller reaches: models, controls, display, worker."""

    engines: Engines
    state: AppState
    display: Display
    views: Views
    worker: CoalescingWorker
    router: ResultRouter
    hearts: OwnHearts

    def set_engines(self, engines: Engines) -> None:
        """Swap the loaded models."""
        ...

    def status(self, message: str, timeout_ms: int = 8000) -> None:
        """Show a message in the status bar."""
        ...

    def report_error(self, title: str, message: str) -> QMessageBox:
        """One error dialog."""
        ...

    def apply_session(self, session: Session, source: str | Path = "session") -> list[str]:
        """Restore a session; the notes about what differs."""
        ...

    def close(self) -> bool:
        """Close the window (File > Quit)."""
        ...
