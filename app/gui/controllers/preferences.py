"""Preferences: compute device, numeric precision and CPU threads, kept in the app's settings.

Threads and precision apply at once; the device applies at the next start (the loaded models and
every opened heart live on the current one). ``--device`` on the command line wins over it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from cardio_explorer.app.gui.controllers.heart import settings
from cardio_explorer.engine.device import PRECISIONS, describe, set_precision

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Preferences:
    """Device ('auto', 'cpu', 'cuda'), precision ('auto', 'fp32', 'bf16'), threads (0: default)."""

    device: str = "auto"
    precision: str = "auto"
    threads: int = 0


def load_preferences() -> Preferences:
    """The saved preferences (defaults for missing or unknown values)."""
    store = settings()
    device = str(store.value("prefs/device", "auto"))
    precision = str(store.value("prefs/precision", "auto"))
    try:
        threads = max(0, int(store.value("prefs/threads", 0)))
    except (TypeError, ValueError):
        threads = 0
    return Preferences(
        device if device in DEVICES else "auto",
        precision if precision in PRECISIONS else "auto",
        threads,
    )


def preferred_device(prefs: Preferences) -> str:
    """The saved device where this machine has it ('cuda' saved on a GPU machine: 'auto' here)."""
    return "auto" if prefs.device == "cuda" and not torch.cuda.is_available() else prefs.device


def save_preferences(prefs: Preferences) -> None:
    """Keep the preferences for the next start."""
    store = settings()
    store.setValue("prefs/device", prefs.device)
    store.setValue("prefs/precision", prefs.precision)
    store.setValue("prefs/threads", prefs.threads)
    store.sync()


def apply_preferences(prefs: Preferences, cli_precision: str | None = None) -> list[str]:
    """Apply threads and precision now (a ``--precision`` other than auto given on the command
    line wins); returns notes on what could not be applied (none so far)."""
    if prefs.threads > 0:
        torch.set_num_threads(prefs.threads)
    set_precision(prefs.precision if cli_precision in (None, "auto") else cli_precision)
    return []


class PreferencesDialog(QDialog):
    """Device, precision and threads; OK saves and applies them."""

    def __init__(self, running_device: torch.device, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        prefs = load_preferences()
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(prefs.device)
        self.device.setToolTip(
            "Where the models run: auto picks CUDA when a GPU is present. Applies at the next "
            "start; --device on the command line wins."
        )
        if not torch.cuda.is_available():
            self.device.model().item(DEVICES.index("cuda")).setEnabled(False)
        self.precision = QComboBox()
        self.precision.addItems(list(PRECISIONS))
        self.precision.setCurrentText(prefs.precision)
        self.precision.setToolTip(
            "Numeric precision of the networks: auto uses bf16 where the hardware has it, "
            "fp32 otherwise. Applies at once."
        )
        self.threads = QSpinBox()
        self.threads.setRange(0, os.cpu_count() or 1)
        self.threads.setSpecialValueText("default")
        self.threads.setValue(prefs.threads)
        self.threads.setToolTip("CPU threads for the networks (0: torch's default); at once.")
        note = QLabel(f"Running on: {describe(running_device)}")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("CPU threads", self.threads)
        form.addRow(note)
        form.addRow(buttons)

    def chosen(self) -> Preferences:
        """The preferences as the dialog shows them."""
        return Preferences(
            self.device.currentText(), self.precision.currentText(), self.threads.value()
        )
