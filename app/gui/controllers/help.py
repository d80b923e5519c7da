"""Help menu (keyboard shortcuts, About), Edit > Preferences, and a tooltip on every control."""

from __future__ import annotations

import html
import platform
from typing import TYPE_CHECKING

import torch
import vtkmodules
from PySide6 import __version__ as qt_version
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QMenu,
    QMenuBar,
    QScrollBar,
    QTabBar,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from cardio_explorer import __version__
from cardio_explorer.app.gui.controllers.preferences import (
    PreferencesDialog,
    apply_preferences,
    save_preferences,
)
from cardio_explorer.app.gui.controllers.tooltips import apply_tooltips
from cardio_explorer.app.jobs.models import KIND_TITLES, KINDS
from cardio_explorer.engine.device import current_precision, describe, precision_policy

if TYPE_CHECKING:
    from cardio_explorer.app.gui.window import MainWindow

# Keys that are not menu actions (window shortcuts, the 3D view's mouse), with what they do.
OTHER_KEYS = (
    ("Space", "Play / pause (the alpha sweep, or the heartbeat on the conditions tab)"),
    ("R", "Reset the 3D view (camera framed on the heart)"),
    ("Left drag (3D)", "Rotate"),
    ("Right drag / wheel (3D)", "Zoom"),
    ("Middle drag or Shift+left drag (3D)", "Pan"),
    ("Drop files on the window", "Open them as your heart"),
)


class HelpController(QObject):
    """Builds Edit > Preferences and the Help menu; keeps its dialogs for tests."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.dialogs: dict[str, QDialog] = {}

    def build_menus(self, menu_bar: QMenuBar, edit: QMenu) -> None:
        """Add Preferences to Edit, a Help menu, and tooltips to every control."""
        edit.addSeparator()
        prefs = QAction("Preferences…", self.window)
        prefs.setShortcut(QKeySequence(QKeySequence.StandardKey.Preferences))
        prefs.triggered.connect(lambda _=False: self.show_preferences())
        edit.addAction(prefs)
        menu = menu_bar.addMenu("&Help")
        keys = QAction("Keyboard shortcuts", self.window)
        keys.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))
        keys.triggered.connect(lambda _=False: self.show_shortcuts())
        about = QAction("About cardio-explorer", self.window)
        about.triggered.connect(lambda _=False: self.show_about())
        menu.addAction(keys)
        menu.addAction(about)
        apply_tooltips(self.window)

    # dialogs --------------------------------------------------------------------------------
    def _text_dialog(self, key: str, title: str, body: str) -> QDialog:
        old = self.dialogs.get(key)
        if old is not None:
            old.close()
        dialog = QDialog(self.window)
        dialog.setWindowTitle(title)
        text = QTextBrowser()
        text.setOpenExternalLinks(True)
        text.setHtml(body)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.close)
        layout = QVBoxLayout(dialog)
        layout.addWidget(text)
        layout.addWidget(buttons)
        dialog.resize(640, 520)
        dialog.text = text  # type: ignore[attr-defined]
        self.dialogs[key] = dialog
        dialog.show()
        return dialog

    def show_shortcuts(self) -> QDialog:
        """Every key the window answers to: menu actions and window shortcuts."""
        rows = shortcut_rows(self.window)
        body = "<h3>Keyboard shortcuts</h3><table cellpadding='4'>" + "".join(
            f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows
        )
        return self._text_dialog("shortcuts", "Keyboard shortcuts", body + "</table>")

    def show_about(self) -> QDialog:
        """Version, device, precision and each loaded checkpoint with its hash and data."""
        return self._text_dialog("about", "About cardio-explorer", about_html(self.window))

    def show_preferences(self) -> PreferencesDialog:
        """Device, precision and threads (non-modal); OK saves and applies them."""
        dialog = PreferencesDialog(self.window.engines.device, self.window)
        self.dialogs["preferences"] = dialog

        def accepted() -> None:
            prefs = dialog.chosen()
            save_preferences(prefs)
            notes = apply_preferences(prefs)
            device = self.window.engines.device
            self.window.device_label.setText(f"{describe(device)}, {current_precision(device)}")
            self.window.status("; ".join(["preferences saved", *notes]))

        dialog.accepted.connect(accepted)
        dialog.open()
        return dialog


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(keys, what) of every menu action with a shortcut, then the other keys."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys and keys not in seen:
            seen.add(keys)
            rows.append((keys, action.text().replace("&", "").replace("…", "").split("\t")[0]))
    shortcut_keys = {s.key().toString() for s in window.findChildren(QShortcut)}
    for keys, what in OTHER_KEYS:
        if keys not in seen and (len(keys) > 6 or keys in shortcut_keys):
            rows.append((keys, what))
    return rows


def about_html(window: MainWindow) -> str:
    """The About text: versions, device, precision, checkpoints (path, sha256, training data)."""

    engines = window.engines
    rows = [
        ("Version", __version__),
        ("Device", describe(engines.device)),
        ("Precision", f"{current_precision(engines.device)} (policy {precision_policy()})"),
        (
            "Runtime",
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"PySide6 {qt_version}, VTK {getattr(vtkmodules, '__version__', '?')}",
        ),
    ]
    body = "<h3>cardio-explorer</h3><table cellpadding='3'>" + "".join(
        f"<tr><td><b>{k}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    body += "</table><h4>Loaded checkpoints</h4>"
    for kind in KINDS:
        slot = engines.slot(kind)
        title = KIND_TITLES[kind]
        if not slot.ready:
            body += f"<p><b>{title}</b>: {html.escape(slot.message or 'not loaded')}</p>"
            continue
        body += (
            f"<p><b>{title}</b>: {html.escape(str(slot.path))}<br>"
            f"sha256 <code>{slot.sha256}</code><br>trained on: {html.escape(slot.trained_on)}</p>"
        )
    return body


def controls_without_tooltip(root: QWidget) -> list[QWidget]:
    """Buttons, sliders, spin boxes and pickers under ``root`` that have no tooltip."""
    kinds = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox)
    # parts of Qt's own widgets (scroll bars, tab-bar arrows, a spin box's editor) are not ours
    internal = (QAbstractSpinBox, QComboBox, QTabBar)
    return [
        w
        for kind in kinds
        for w in root.findChildren(kind)
        if not w.toolTip()
        and not isinstance(w, QScrollBar)
        and not isinstance(w.parent(), internal)
    ]
