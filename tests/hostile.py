"""Hostile copies of good files for the bad-input tests: a checkpoint with its header or
weights changed, a NIfTI with raw header fields overwritten. Plain functions, no fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from safetensors import safe_open
from safetensors.torch import load_file, save_file

META_KEY = "cardio_explorer"


def rewrite_checkpoint(
    source: Path,
    target: Path,
    header: Callable[[dict[str, Any]], Any] | None = None,
    weights: Callable[[dict], None] | None = None,
) -> Path:
    """Copy a checkpoint, passing its JSON header and its weights through the given edits."""
    with safe_open(str(source), framework="pt") as handle:
        text = handle.metadata()[META_KEY]
    data = json.loads(text)
    if header is not None:
        data = header(data)
    tensors = load_file(str(source))
    if weights is not None:
        weights(tensors)
    save_file(tensors, str(target), metadata={META_KEY: json.dumps(data)})
    return target


def with_reference_id(new_id: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Header edit: the atlas's first reference subject renamed to ``new_id``."""

    def edit(data: dict[str, Any]) -> dict[str, Any]:
        data["extra"]["atlas"]["references"][0]["id"] = new_id
        return data

    return edit


def nifti_with_fields(
    path: Path, fields: dict[str, Any], shape: tuple[int, ...] = (4, 3, 2), pad: int = 0
) -> Path:
    """A small uint8 NIfTI-1 (.nii) whose raw header fields are overwritten without checks;
    ``pad`` extra zero bytes follow the voxels."""
    image = nib.Nifti1Image(np.ones(shape, dtype=np.uint8), np.diag([1.5, 1.5, 8.0, 1.0]))
    image.header.set_data_dtype(np.uint8)
    blob = bytearray(image.to_bytes())
    struct = np.frombuffer(bytes(blob[:348]), dtype=image.header.structarr.dtype).copy()
    for key, value in fields.items():
        struct[key] = value
    blob[:348] = struct.tobytes()
    path.write_bytes(bytes(blob) + bytes(pad))
    return path
