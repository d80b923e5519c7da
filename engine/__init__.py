"""Numbers only: data, models, sampling, metrics, I/O. Imports neither Qt nor VTK."""

from cardio_explorer.engine.errors import CardioInputError, CardioWarning
from cardio_explorer.engine.labels import LABEL_TABLE, Label, LabelTable
from cardio_explorer.engine.subject import GROUPS, Conditions, Subject
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

__all__ = [
    "GROUPS",
    "LABEL_TABLE",
    "CardioInputError",
    "CardioWarning",
    "Conditions",
    "ImageVolume",
    "Label",
    "LabelTable",
    "LabelVolume",
    "Subject",
]
