"""Pane titles, the 3D orientation marker and the one label legend, put on the window's views."""

from __future__ import annotations

from cardio_explorer.app.gui.host import Host
from cardio_explorer.viewer.anatomy import HeartAids

TITLES = {
    "slice": "Short axis (labels; image when shown)",
    "long_axis": "Long axis through the LV",
}


def install_aids(window: Host) -> HeartAids:
    """Titles on every view, and in 3D the orientation marker and the label legend."""
    views = window.views
    for name, title in TITLES.items():
        getattr(views, name).aids.set_title(title)
    views.latent.set_title("Latent space")
    return HeartAids(views.heart, "3D heart (world mm, RAS)")
