"""Clinical conditions panel (CHeart): conditions with training ranges, generate / complete,
samples, and a condition sweep shown as population curves.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cardio_explorer.app.gui.controllers.tooltips import GROUP_TIP, NO_GROUPS_TIP
from cardio_explorer.app.gui.controllers.widgets import NoticeLabel
from cardio_explorer.app.gui.display import Display
from cardio_explorer.app.gui.workers import CoalescingWorker, ResultRouter
from cardio_explorer.app.jobs.models import Engines
from cardio_explorer.app.jobs.protocol import JobDone, next_request_id
from cardio_explorer.app.jobs.sequence import (
    SequenceOutput,
    SequenceRequest,
    SweepOutput,
    SweepRequest,
    sweep_values,
)
from cardio_explorer.app.jobs.state import MAX_SAMPLES, SWEEP_CONDITIONS, AppState
from cardio_explorer.engine.cheart.conditions import UNITS
from cardio_explorer.engine.cheart.groups import ANY_GROUP, model_groups, parse_group
from cardio_explorer.engine.subject import Conditions
from cardio_explorer.viewer.plots import SweepBand

# name -> (spin box minimum, maximum, decimals); wide on purpose: out-of-range is warned, not
# forbidden, so the user can see the model extrapolate
SPIN_LIMITS = {
    "age": (1, 120, 0),
    "height": (50, 250, 1),
    "weight": (20, 300, 1),
    "sbp": (50, 260, 0),
}
SWEEP_PHENOTYPES = {
    "LVEDV (mL)": "lvedv_ml",
    "LVESV (mL)": "lvesv_ml",
    "LVEF (%)": "lvef",
    "LV mass (g)": "lvm_g",
    "RVEDV (mL)": "rvedv_ml",
    "RVEF (%)": "rvef",
}
# the group selector's entries: shown text -> the state's value
GROUP_ITEMS = (
    ("normal (NOR)", "NOR"),
    ("DCM", "DCM"),
    ("HCM", "HCM"),
    ("MINF", "MINF"),
    ("ARV", "ARV"),
    ("any (drawn from the conditions)", ANY_GROUP),
)
SEQUENCE_FIELDS = frozenset({"show_image", "smoothing"})
_WARN_STYLE = "background: #5a2a20;"


class ConditionsPanel(QWidget):
    """Age, sex, height, weight, SBP bound to the state; buttons emit requests to the controller.

    Signals: ``generate_clicked``, ``complete_clicked``, ``sweep_clicked``.
    """

    generate_clicked = Signal()
    complete_clicked = Signal()
    sweep_clicked = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.message = NoticeLabel()
        self.spins: dict[str, QDoubleSpinBox] = {}
        self.range_labels: dict[str, QLabel] = {}
        self.controls = QWidget()
        form = QFormLayout(self.controls)
        form.setContentsMargins(0, 0, 0, 0)
        self.sex = QComboBox()
        self.sex.addItems(["F", "M"])
        for name in ("age", "height", "weight", "sbp"):
            low, high, decimals = SPIN_LIMITS[name]
            spin = QDoubleSpinBox()
            spin.setRange(low, high)
            spin.setDecimals(decimals)
            spin.setSuffix(f" {UNITS[name]}")
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._conditions_edited)
            note = QLabel("")
            note.setStyleSheet("color: #909090;")
            row = QHBoxLayout()
            row.addWidget(spin, 1)
            row.addWidget(note)
            form.addRow(name.upper() if name == "sbp" else name.capitalize(), row)
            self.spins[name] = spin
            self.range_labels[name] = note
            if name == "age":
                form.addRow("Sex", self.sex)
        self.sex.currentTextChanged.connect(self._conditions_edited)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #ff8a65; font-weight: bold;")
        form.addRow(self.warning)
        self._form = form  # the warning's row takes room only while it says something
        self.group = QComboBox()
        for text, value in GROUP_ITEMS:
            self.group.addItem(text, value)
        self.group.setToolTip(GROUP_TIP)
        self.group.currentIndexChanged.connect(
            lambda i: self.state.set("cheart_group", self.group.itemData(i))
        )
        form.addRow("Group", self.group)
        self.n_samples = QSpinBox()
        self.n_samples.setRange(1, MAX_SAMPLES)
        self.n_samples.valueChanged.connect(lambda v: self.state.set("n_samples", v))
        self.sample_index = QSpinBox()
        self.sample_index.setRange(1, 1)
        self.sample_index.setToolTip("Which generated sample is shown")
        self.sample_index.valueChanged.connect(lambda v: self.state.set("sample_index", v - 1))
        form.addRow("Samples", self.n_samples)
        form.addRow("Show sample", self.sample_index)
        self.generate = QPushButton("Generate")
        self.generate.setToolTip("New hearts (new z) for these conditions")
        self.complete = QPushButton("Complete")
        self.complete.setToolTip("Complete a cycle from the ED frame of the morph step on screen")
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate)
        buttons.addWidget(self.complete)
        form.addRow(buttons)
        self.generate.clicked.connect(self.generate_clicked)
        self.complete.clicked.connect(self.complete_clicked)

        sweep_box = QGroupBox("Condition sweep")
        sweep_form = QFormLayout(sweep_box)
        self.sweep_condition = QComboBox()
        self.sweep_condition.addItems(list(SWEEP_CONDITIONS))
        self.sweep_condition.currentTextChanged.connect(
            lambda text: self.state.set("sweep_condition", text)
        )
        self.sweep_n = QSpinBox()
        self.sweep_n.setRange(1, 64)
        self.sweep_n.setValue(4)
        self.sweep_phenotype = QComboBox()
        self.sweep_phenotype.addItems(list(SWEEP_PHENOTYPES))
        self.sweep = QPushButton("Sweep")
        sweep_form.addRow("Condition", self.sweep_condition)
        sweep_form.addRow("Hearts per step", self.sweep_n)
        sweep_form.addRow("Show", self.sweep_phenotype)
        sweep_form.addRow(self.sweep)
        self.sweep.clicked.connect(self.sweep_clicked)

        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.controls)
        layout.addWidget(sweep_box)
        layout.addStretch(1)
        self.sweep_box = sweep_box
        self._has_groups = True
        self._low: dict[str, float] = {}
        self._high: dict[str, float] = {}
        state.subscribe(self._on_state)
        self._show_conditions(state.conditions)
        self._show_group(state.cheart_group)

    def set_available(self, available: bool, message: str = "") -> None:
        """Enable the panel, or say why it cannot work (no CHeart model)."""
        self.controls.setEnabled(available)
        self.sweep_box.setEnabled(available)
        self.message.say(message)

    def set_ranges(self, low: dict[str, float], high: dict[str, float]) -> None:
        """The training range of each numeric condition (from the checkpoint)."""
        self._low, self._high = dict(low), dict(high)
        for name, note in self.range_labels.items():
            note.setText(f"{low[name]:.0f}–{high[name]:.0f}" if name in low else "")
        self._check_ranges()

    def set_groups(self, groups: tuple[str, ...]) -> None:
        """The groups the loaded model's prior can generate by; none disables the selector."""
        self.group.setEnabled(bool(groups))
        self.group.setToolTip(GROUP_TIP if groups else NO_GROUPS_TIP)
        items = self.group.model()
        for i, (_, value) in enumerate(GROUP_ITEMS):
            items.item(i).setEnabled(value == ANY_GROUP or value in groups)
        self._has_groups = bool(groups)
        self._show_group(self.state.cheart_group)

    def out_of_range(self) -> list[str]:
        """Names of the conditions outside the training range."""
        return [
            name
            for name, spin in self.spins.items()
            if name in self._low and not self._low[name] <= spin.value() <= self._high[name]
        ]

    def _check_ranges(self) -> None:
        outside = self.out_of_range()
        for name, spin in self.spins.items():
            spin.setStyleSheet(_WARN_STYLE if name in outside else "")
        self.warning.setText(
            "Outside the training range: " + ", ".join(outside) + " (the model extrapolates)"
            if outside
            else ""
        )
        self._form.setRowVisible(self.warning, bool(outside))

    def set_sample_count(self, n: int) -> None:
        """How many samples the shown sequence result has."""
        self.sample_index.blockSignals(True)
        self.sample_index.setRange(1, max(1, n))
        self.sample_index.setValue(min(self.state.sample_index, n - 1) + 1)
        self.sample_index.blockSignals(False)

    def _conditions_edited(self, *_: Any) -> None:
        values = {name: spin.value() for name, spin in self.spins.items()}
        values["sex"] = self.sex.currentText()
        self.state.set("conditions", Conditions(**values))

    def _on_state(self, name: str, value: Any) -> None:
        if name == "conditions":
            self._show_conditions(value)
        elif name == "n_samples":
            self.n_samples.blockSignals(True)
            self.n_samples.setValue(int(value))
            self.n_samples.blockSignals(False)
        elif name == "cheart_group":
            self._show_group(value)
        elif name == "sweep_condition":
            self.sweep_condition.blockSignals(True)
            self.sweep_condition.setCurrentText(value)
            self.sweep_condition.blockSignals(False)

    def _show_group(self, value: str) -> None:
        # without groups every heart is drawn from the conditions, whatever the state says
        shown = value if self._has_groups else ANY_GROUP
        self.group.blockSignals(True)
        self.group.setCurrentIndex(self.group.findData(shown))
        self.group.blockSignals(False)

    def _show_conditions(self, conditions: Conditions) -> None:
        for name, spin in self.spins.items():
            spin.blockSignals(True)
            spin.setValue(float(getattr(conditions, name)))
            spin.blockSignals(False)
        self.sex.blockSignals(True)
        self.sex.setCurrentText(conditions.sex)
        self.sex.blockSignals(False)
        self._check_ranges()


class SequenceController(QObject):
    """Generate / complete / sweep requests; newest results -> display, playback, plots."""

    def __init__(
        self,
        state: AppState,
        panel: ConditionsPanel,
        display: Display,
        worker: CoalescingWorker,
        router: ResultRouter,
        engines: Engines,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state, self.panel, self.display, self.worker = state, panel, display, worker
        self.engines = engines
        self.last_request: SequenceRequest | None = None
        self.sweep_output: SweepOutput | None = None
        self.on_sequence = None  # callable(output) set by the window (playback bar)
        router.route("sequence", self._sequence_done)
        router.route("sweep", self._sweep_done)
        panel.generate_clicked.connect(self.generate)
        panel.complete_clicked.connect(self.complete)
        panel.sweep_clicked.connect(self.sweep)
        panel.sweep_phenotype.currentTextChanged.connect(self._draw_sweep)
        state.subscribe(self._on_state)

    def set_engines(self, engines: Engines) -> None:
        """Use other models; the panel says when CHeart is missing."""
        self.engines = engines
        model = engines.cheart
        if model is None:
            self.panel.set_available(False, engines.slot("cheart").message)
            return
        self.panel.set_available(True)
        self.panel.set_ranges(model.stats.low, model.stats.high)
        self.panel.set_groups(model_groups(model))

    def group(self) -> str | None:
        """The prior component requests ask for: the selector's group, None when it says any
        or the model's prior has no groups."""
        model = self.engines.cheart
        if model is None or not model_groups(model):
            return None
        return parse_group(self.state.cheart_group)

    def _on_state(self, name: str, value: Any) -> None:
        if name == "sample_index":
            self.display.show_sample()
        elif (
            name in SEQUENCE_FIELDS
            and self.last_request is not None
            and self.display.scene == "sequence"
        ):
            self._submit(self.last_request.mode, self.last_request.ed)

    def generate(self) -> SequenceRequest | None:
        """New hearts for the current conditions (seed from the state)."""
        return self._submit("generate", None)

    def complete(self) -> SequenceRequest | None:
        """Complete a cycle from the ED frame of the shown subject (morph step at its alpha)."""
        morph = self.display.morph
        ed = morph.ed if morph is not None else None
        return self._submit("complete", ed)

    def _submit(self, mode: str, ed) -> SequenceRequest | None:
        if self.engines.cheart is None:
            return None
        s = self.state
        request = SequenceRequest(
            next_request_id(),
            self.engines,
            mode,
            s.conditions,
            s.n_samples if mode == "generate" else 1,
            s.seed,
            s.show_image,
            s.smoothing,
            ed,
            self.group() if mode == "generate" else None,
        )
        self.last_request = request
        self.worker.submit(request)
        return request

    def sweep(self) -> SweepRequest | None:
        """Population curves over the training range of the chosen condition."""
        model = self.engines.cheart
        if model is None:
            return None
        name = self.state.sweep_condition
        request = SweepRequest(
            next_request_id(),
            self.engines,
            name,
            sweep_values(model, name),
            self.state.conditions,
            self.panel.sweep_n.value(),
            self.state.seed,
            self.group(),
        )
        self.worker.submit(request)
        return request

    def _sequence_done(self, result: JobDone) -> None:
        output: SequenceOutput = result.value
        n = len(output.samples)
        if self.state.sample_index >= n:
            self.state.set("sample_index", 0, undoable=False)
        self.state.set("frame", 0)
        self.panel.set_sample_count(n)
        self.display.show_sequence(output, result.request.request_id)
        if self.on_sequence is not None:
            self.on_sequence(result)

    def _sweep_done(self, result: JobDone) -> None:
        self.sweep_output = result.value
        self._draw_sweep()

    def _draw_sweep(self, *_: Any) -> None:
        output = self.sweep_output
        if output is None:
            return
        label = self.panel.sweep_phenotype.currentText()
        key = SWEEP_PHENOTYPES[label]
        bands = {}
        for sex, table in output.curves.items():
            band = table[key]
            bands[sex] = SweepBand(*(list(band[k]) for k in ("mean", "low", "high")))
        unit = UNITS.get(output.condition, "")
        self.display.views.sweep.set_sweep(
            output.values, bands, f"{output.condition} ({unit})", label
        )
