"""The models the app runs: which checkpoint each panel uses, loaded once, with clear gaps.

A missing or broken checkpoint never stops the app: its slot holds a message saying how to
train or obtain it, and the panels that need it show that message instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from cardio_explorer import resources
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import read_checkpoint_header

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
    def morph(self):  # -> PathologyMorph | None
        """The pathology morph (label VAE + latent atlas), or None."""
        return self.slot("label_vae").model

    @property
    def cheart(self):  # -> CHeartModel | None
        """The CHeart 3D+t model, or None."""
        return self.slot("cheart").model

    @property
    def spade(self):  # -> SpadeModel | None
        """The SPADE label-to-image generator, or None."""
        return self.slot("spade").model

    def with_slot(self, slot: ModelSlot) -> Engines:
        """A copy with one slot replaced."""
        return replace(self, slots={**self.slots, slot.kind: slot})


def checkpoint_kind(path: str | Path) -> str:
    """The model kind named in a checkpoint's header; CardioInputError for a bad file."""
    return str(read_checkpoint_header(path)["kind"])


def load_slot(kind: str, path: str | Path, device: torch.device) -> ModelSlot:
    """Load one checkpoint of ``kind``; CardioInputError when the file is bad or of another kind."""
    path = Path(path)
    found = checkpoint_kind(path)
    if found != kind:
        raise CardioInputError(path, f"is a {found} checkpoint, not a {kind} checkpoint")
    if kind == "label_vae":
        from cardio_explorer.engine.label_vae.morph import PathologyMorph

        morph = PathologyMorph.from_checkpoint(path, device)
        if not morph.atlas.reference_ids:
            raise CardioInputError(path, "its latent atlas holds no NOR subject to morph")
        from cardio_explorer.engine.nn.checkpoint import file_sha256

        return ModelSlot(kind, morph, path, file_sha256(path))
    if kind == "cheart":
        from cardio_explorer.engine.cheart.model import load_model

        model = load_model(path, device)
        return ModelSlot(kind, model, path, model.sha256)
    from cardio_explorer.engine.nn.checkpoint import load_checkpoint
    from cardio_explorer.engine.spade.network import load_spade

    checkpoint = load_checkpoint(path, "spade")
    return ModelSlot(kind, load_spade(checkpoint, device), path, checkpoint.sha256)


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
