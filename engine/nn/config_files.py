"""A ``--config`` argument for any network: a preset name, or JSON fields over a base preset."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from cardio_explorer.engine.errors import CardioInputError

C = TypeVar("C")


def read_config(
    spec: str | Path | Mapping[str, Any],
    presets: Mapping[str, C],
    to_dict: Callable[[C], dict[str, Any]],
    from_dict: Callable[[dict[str, Any], str | Path], C],
) -> C:
    """The preset ``spec`` names (any case), or a config from a JSON file (or a dict) of fields
    over its ``"base"`` preset (default 'lean'); one clear error for anything else.

    ``from_dict(fields, source)`` builds and checks the config, naming ``source`` in its errors.
    """
    if isinstance(spec, str) and spec.lower() in presets:
        return presets[spec.lower()]
    source: str | Path = "--config"
    if isinstance(spec, str | Path):
        source = Path(spec)
        if not source.is_file():
            raise CardioInputError(
                "--config",
                f"{str(spec)!r} is neither a preset {sorted(presets)} nor an existing JSON file",
            )
        try:
            spec = json.loads(source.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CardioInputError(source, f"not a readable JSON config ({error})") from None
    if not isinstance(spec, Mapping):
        raise CardioInputError(source, "a config must be a JSON object of fields")
    fields = dict(spec)
    base = str(fields.pop("base", "lean")).lower()
    if base not in presets:
        raise CardioInputError(source, f"base must be one of {sorted(presets)}, got {base!r}")
    return from_dict({**to_dict(presets[base]), **fields}, source)
