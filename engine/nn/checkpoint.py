"""Checkpoints: one safetensors file holding the weights and a JSON header; nothing is unpickled.

The JSON (safetensors metadata key ``cardio_explorer``) records the model kind, its architecture
config and any extra JSON-able state (latent atlas, condition normalisation, training summary).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write
from cardio_explorer.engine.limits import load_json

FORMAT_VERSION = 1
MODEL_KINDS = ("label_vae", "spade", "cheart")
_META_KEY = "cardio_explorer"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: kind, architecture config, weights and extra JSON state."""

    kind: str
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""

    def parse_config(self, parse: Callable[[dict[str, Any]], Any]) -> Any:
        """``parse(config)``, any failure of it one error naming this checkpoint."""
        try:
            return parse(self.config)
        except CardioInputError as error:
            raise CardioInputError(self.path or "checkpoint", error.problem) from None
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            raise CardioInputError(
                self.path or "checkpoint", f"invalid {self.kind} config ({_first_line(error)})"
            ) from None

    def check_fits(self, build: Callable[[], torch.nn.Module], prefix: str = "") -> None:
        """Build the model the config describes on the meta device (no memory) and refuse the
        checkpoint unless every weight it needs is there with the right shape; only then is the
        real model built, so a config claiming a huge model cannot allocate it."""
        where = self.path or "checkpoint"
        try:
            with torch.device("meta"):
                module = build()
        except CardioInputError as error:
            raise CardioInputError(where, error.problem) from None
        except Exception as error:  # any failure to build means the config is unusable
            raise CardioInputError(
                where,
                f"config does not describe a {self.kind} model ({type(error).__name__}: "
                f"{_first_line(error)})",
            ) from None
        expected = {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}
        missing = [k for k in expected if k not in self.tensors]
        wrong = [
            f"{k} {tuple(self.tensors[k].shape)} vs {shape}"
            for k, shape in expected.items()
            if k in self.tensors and tuple(self.tensors[k].shape) != shape
        ]
        problems = [f"{len(missing)} missing weights (e.g. {missing[0]})"] if missing else []
        problems += [f"{len(wrong)} shape mismatches (e.g. {wrong[0]})"] if wrong else []
        if problems:
            raise CardioInputError(
                where, f"does not fit the {self.kind} model it describes: " + "; ".join(problems)
            )

    def load_into(self, module: torch.nn.Module, prefix: str = "") -> None:
        """Copy weights named ``prefix``* into ``module``; a clear error on any mismatch."""
        state = {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}
        expected = module.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = [
            f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
            for k, v in expected.items()
            if k in state and state[k].shape != v.shape
        ]
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing weights (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected weights (e.g. {unexpected[0]})")
        if wrong:
            problems.append(f"{len(wrong)} shape mismatches (e.g. {wrong[0]})")
        if problems:
            raise CardioInputError(
                self.path or "checkpoint",
                f"does not fit the {self.kind} model it describes: " + "; ".join(problems),
            )
        module.load_state_dict(state)


def save_checkpoint(
    path: str | Path,
    kind: str,
    config: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename); returns the path."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    path = Path(path)
    header = {"version": FORMAT_VERSION, "kind": kind, "config": config, "extra": extra or {}}
    metadata = {_META_KEY: json.dumps(header, allow_nan=False)}
    weights = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: save_file(weights, str(tmp), metadata=metadata))


def read_checkpoint_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a checkpoint (kind, version, config, extra) without loading weights."""
    path = Path(path)
    if not path.is_file():
        raise CardioInputError(path, "checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CardioInputError(path, f"not a readable safetensors checkpoint ({error})") from None
    if _META_KEY not in metadata:
        raise CardioInputError(path, "safetensors file has no cardio-explorer header")
    try:
        header = load_json(path, metadata[_META_KEY])
    except CardioInputError as error:
        raise CardioInputError(path, f"checkpoint header: {error.problem}") from None
    if not isinstance(header, dict) or header.get("kind") not in MODEL_KINDS:
        raise CardioInputError(path, f"checkpoint names no known model kind {MODEL_KINDS}")
    version = header.get("version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        shown = repr(version)[:40]
        raise CardioInputError(path, f"checkpoint format version {shown} is not {FORMAT_VERSION}")
    for key in ("config", "extra"):
        if not isinstance(header.get(key, {}), dict):
            got = type(header[key]).__name__
            raise CardioInputError(path, f"checkpoint header: {key} must be an object, got {got}")
    return header


def load_checkpoint(path: str | Path, expected_kind: str | None = None) -> Checkpoint:
    """Load and validate a checkpoint; ``expected_kind`` rejects a checkpoint of another model."""
    path = Path(path)
    header = read_checkpoint_header(path)
    if expected_kind is not None and header["kind"] != expected_kind:
        raise CardioInputError(
            path, f"is a {header['kind']} checkpoint, but a {expected_kind} checkpoint is needed"
        )
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CardioInputError(path, f"checkpoint weights are unreadable ({error})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CardioInputError(path, f"weight {name[:100]} holds NaN or infinite values")
    return Checkpoint(
        kind=header["kind"],
        config=dict(header.get("config", {})),
        tensors=tensors,
        extra=dict(header.get("extra", {})),
        path=path,
        sha256=file_sha256(path),
    )


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (checkpoint identity in sessions and reports)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(error: BaseException) -> str:
    """The first line of an error's text, at most 200 characters (messages are one line)."""
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__
