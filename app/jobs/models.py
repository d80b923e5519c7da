"""The models the app runs: which checkpoint each panel uses, loaded once, with clear gaps.

A missing or broken checkpoint never stops the app: its slot holds a message saying how to
train or obtain it, and the panels that need it show that message instead. A checkpoint file is
read, validated and hashed once (:func:`open_checkpoint`); :data:`LOADERS` has one entry per
model kind and is chosen by the kind its header names. A new model kind adds its entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from cardio_explorer import resources
from cardio_explorer.engine.cheart.model import CHeartModel, load_model
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.nn.checkpoint import Checkpoint, load_checkpoint
from cardio_explorer.engine.spade.network import SpadeModel, load_spade

KINDS = ("label_vae", "cheart", "spade")
KIND_TITLES = {"label_vae": "label VAE", "cheart": "CHeart", "spade": "SPADE"}


def missing_message(kind: str, path: Path) -> str:
    """What to tell the user when a model's checkpoint is absent."""
    return (
        f"No {KIND_TITLES[kind]} model: {path} not found. Train one with `cardio-explorer train "
        f"{kind.replace('_', '-')} --data COHORT --out resources/{kind}.safetensors` "
        "(see the README), or open a checkpoint with File > Open checkpoint."
    )


@dataclass(frozen=True)
class ModelSlot:
    """One model kind: the loaded model (or None), where it came from, or why it is missing."""

    kind: str
    model: Any = None
    path: Path | None = None
    sha256: str = ""
    message: str = ""
    loading: bool = False
    trained_on: str = ""  # one line from the checkpoint's header (Help > About)

    @property
    def ready(self) -> bool:
        """True when the model is loaded."""
        return self.model is not None


@dataclass(frozen=True)
class Engines:
    """An immutable snapshot of the loaded models; requests carry the one they must use."""

    device: torch.device
    slots: dict[str, ModelSlot] = field(default_factory=dict)

    def slot(self, kind: str) -> ModelSlot:
        """The slot of one model kind (an empty one when never loaded)."""
        return self.slots.get(kind, ModelSlot(kind, message=f"no {KIND_TITLES[kind]} model"))

    @property
    def morph(self) -> PathologyMorph | None:
        """The pathology morph (label VAE + latent atlas), or None."""
        return self.slot("label_vae").model

    @property
    def cheart(self) -> CHeartModel | None:
        """The CHeart 3D+t model, or None."""
        return self.slot("cheart").model

    @property
    def spade(self) -> SpadeModel | None:
        """The SPADE label-to-image generator, or None."""
        return self.slot("spade").model

    def with_slot(self, slot: ModelSlot) -> Engines:
        """A copy with one slot replaced."""
        return replace(self, slots={**self.slots, slot.kind: slot})


def _label_vae(checkpoint: Checkpoint, device: torch.device) -> PathologyMorph:
    morph = PathologyMorph.from_checkpoint(checkpoint, device)
    if not morph.atlas.reference_ids:
        raise CardioInputError(checkpoint.path, "its latent atlas holds no NOR subject to morph")
    return morph


def _cheart(checkpoint: Checkpoint, device: torch.device) -> CHeartModel:
    return load_model(checkpoint, device)


def _spade(checkpoint: Checkpoint, device: torch.device) -> SpadeModel:
    return load_spade(checkpoint, device)


# model kind (as a checkpoint's header names it) -> what the app runs, from the read checkpoint
LOADERS: dict[str, Callable[[Checkpoint, torch.device], Any]] = {
    "label_vae": _label_vae,
    "cheart": _cheart,
    "spade": _spade,
}


def open_checkpoint(
    path: str | Path, device: torch.device, kind: str | None = None
) -> Iterator[str]:
    """Read, validate and hash a checkpoint once, then build its model (the header's kind, or
    ``kind`` when given: another kind is an error); yields progress, returns the ModelSlot."""
    path = Path(path)
    if not path.is_file():
        raise CardioInputError(path, "checkpoint file not found")
    yield f"reading {path.name}…"
    checkpoint = load_checkpoint(path)
    if kind is not None and checkpoint.kind != kind:
        raise CardioInputError(path, f"is a {checkpoint.kind} checkpoint, not a {kind} checkpoint")
    if checkpoint.kind not in LOADERS:
        raise CardioInputError(path, f"the app runs no {checkpoint.kind} model")
    yield f"building the {KIND_TITLES[checkpoint.kind]} model…"
    model = LOADERS[checkpoint.kind](checkpoint, device)
    summary = training_summary({"extra": checkpoint.extra})
    return ModelSlot(checkpoint.kind, model, path, checkpoint.sha256, trained_on=summary)


def load_slot(kind: str, path: str | Path, device: torch.device) -> ModelSlot:
    """Load one checkpoint of ``kind`` now; CardioInputError when the file is bad or of another
    kind."""
    steps = open_checkpoint(path, device, kind)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


@dataclass(frozen=True)
class CheckpointRequest:
    """File > Open checkpoint: load it on the worker, whatever kind its header names."""

    request_id: int
    device: torch.device
    path: Path
    lane: ClassVar[str] = "checkpoint"
    error_title: ClassVar[str] = "Cannot open checkpoint"


def run_checkpoint(request: CheckpointRequest, is_current: Any) -> Iterator[str]:
    """Progress while reading and building; the ModelSlot."""
    return (yield from open_checkpoint(request.path, request.device))


def training_summary(header: dict[str, Any]) -> str:
    """One line on what a checkpoint was trained on, from its header."""
    extra = header.get("extra", {})
    training = extra.get("training", {}) if isinstance(extra.get("training"), dict) else {}
    data = training.get("data") or extra.get("data")
    n = training.get("n_subjects")
    n_train = training.get("n_train_subjects") or training.get("n_train")
    if n is None and extra.get("train_subjects"):
        n_train = len(extra["train_subjects"])
        n = n_train + len(extra.get("held_out_subjects", []))
    epochs = training.get("epochs_done") or training.get("epochs")
    parts = []
    if data:
        parts.append(f"data {Path(str(data)).name}")
    if n is not None:
        parts.append(f"{n} subjects" + (f" ({n_train} for training)" if n_train else ""))
    if epochs:
        parts.append(f"{epochs} epochs")
    atlas = extra.get("atlas", {}).get("info", {}) if isinstance(extra.get("atlas"), dict) else {}
    if atlas.get("subjects_per_group"):
        groups = ", ".join(f"{g} {c}" for g, c in atlas["subjects_per_group"].items())
        parts.append(f"latent atlas: {groups}")
    return "; ".join(parts) or "no training record in the header"


def load_kind(kind: str, given: Path | None, device: torch.device) -> ModelSlot:
    """One kind from ``given`` (None: the bundled checkpoint); a failure becomes the message."""
    path = Path(given) if given is not None else resources.bundled_checkpoint(kind)
    if given is None and not path.is_file():
        return ModelSlot(kind, path=path, message=missing_message(kind, path))
    try:
        return load_slot(kind, path, device)
    except CardioInputError as error:
        return ModelSlot(kind, path=path, message=str(error))


def load_engines(
    paths: dict[str, Path | None], device: torch.device, kinds: Iterable[str] = KINDS
) -> Engines:
    """Load ``kinds`` from ``paths`` (None: the bundled checkpoint); failures become messages.

    The other kinds get a slot marked ``loading``: :class:`ModelsRequest` loads them later.
    """
    engines = Engines(device)
    kinds = tuple(kinds)
    for kind in KINDS:
        if kind in kinds:
            slot = load_kind(kind, paths.get(kind), device)
        else:
            title = KIND_TITLES[kind]
            slot = ModelSlot(
                kind, path=paths.get(kind), message=f"loading the {title} model…", loading=True
            )
        engines = engines.with_slot(slot)
    return engines


@dataclass(frozen=True)
class ModelsRequest:
    """Load the given kinds (path None: bundled) on the worker, after the first heart is drawn."""

    request_id: int
    device: torch.device
    paths: tuple[tuple[str, Path | None], ...]
    lane: ClassVar[str] = "models"


def run_models(request: ModelsRequest, is_current: Any) -> Sequence[ModelSlot]:
    """The loaded slots, in the request's order."""
    return [load_kind(kind, path, request.device) for kind, path in request.paths]
