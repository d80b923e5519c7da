"""Small widget behaviours the panels share: a notice that hides when empty, a Play button."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QPushButton, QWidget


class NoticeLabel(QLabel):
    """Wrapped amber text, hidden while empty (e.g. why a model is missing)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("color: #e8a040;")
        self.setVisible(False)

    def say(self, text: str) -> None:
        """Show ``text``; an empty one hides the notice."""
        self.setText(text)
        self.setVisible(bool(text))


def show_playing(button: QPushButton, playing: bool) -> None:
    """Check a Play/Pause button to match ``playing`` without emitting its toggle again."""
    if button.isChecked() != playing:
        button.blockSignals(True)
        button.setChecked(playing)
        button.blockSignals(False)
    button.setText("Pause" if playing else "Play")
