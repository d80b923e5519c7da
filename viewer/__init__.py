"""Widgets that draw: VTK surfaces, slice views, pyqtgraph plots. Imports no torch."""

from cardio_explorer.viewer.qt_compat import install_emit_refcount_fix

# before any widget exists: PySide6 6.12.0 + Python 3.11 otherwise aborts after many emits
install_emit_refcount_fix()
