"""Read-outs of what is shown: LVEDV, LVESV, LVEF, LV mass, RVEDV, RVEF."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QSizePolicy, QWidget

READOUTS = (
    ("lvedv_ml", "LVEDV", "mL"),
    ("rvedv_ml", "RVEDV", "mL"),
    ("lvesv_ml", "LVESV", "mL"),
    ("rvef", "RVEF", "%"),
    ("lvef", "LVEF", "%"),
    ("lvm_g", "LV mass", "g"),
)


class ReadoutBox(QGroupBox):
    """Phenotype values in two columns (keys as in ``Phenotypes.as_dict``)."""

    def __init__(self, title: str = "Read-outs", parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        grid = QGridLayout(self)
        self._labels: dict[str, QLabel] = {}
        for i, (key, name, _unit) in enumerate(READOUTS):
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            # fixed width, right-aligned: values of another length never shift the layout
            value.setFixedWidth(value.fontMetrics().horizontalAdvance("-8888.8 mL") + 4)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            row, col = divmod(i, 2)
            grid.addWidget(QLabel(name), row, 2 * col)
            grid.addWidget(value, row, 2 * col + 1)
            self._labels[key] = value
        self.values: dict[str, float] = {}
        self.pending = False
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_pending(self, pending: bool) -> None:
        """Grey the values out while the read-outs of a newer step are being computed."""
        self.pending = bool(pending)
        style = "color: #808080;" if pending else ""
        for label in self._labels.values():
            label.setStyleSheet(style)

    def show_values(self, values: dict[str, float] | None) -> None:
        """Show phenotype values; None clears them."""
        self.set_pending(False)
        self.values = dict(values or {})
        for key, _name, unit in READOUTS:
            value = self.values.get(key)
            self._labels[key].setText("–" if value is None else f"{value:.1f} {unit}")

    def text(self, key: str) -> str:
        """The text shown for one read-out."""
        return self._labels[key].text()
