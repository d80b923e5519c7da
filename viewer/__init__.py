"""Widgets that draw: VTK surfaces, slice views, pyqtgraph plots. Imports no torch."""
