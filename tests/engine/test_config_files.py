"""One reader for every network's --config: presets, JSON fields over a base, clear errors."""

import json
from dataclasses import asdict, dataclass

import pytest

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.config_files import read_config


@dataclass(frozen=True)
class Config:
    width: int = 8
    depth: int = 2


PRESETS = {"lean": Config(), "paper": Config(width=64, depth=4)}


def _read(spec):
    return read_config(spec, PRESETS, asdict, lambda data, source: Config(**data))


def test_presets_in_any_case_and_fields_over_a_base(tmp_path):
    assert _read("PAPER") is PRESETS["paper"]
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"base": "paper", "depth": 9}))
    assert _read(path) == Config(width=64, depth=9)
    assert _read({"width": 3}) == Config(width=3, depth=2)  # base defaults to lean


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "is neither a preset ['lean', 'paper'] nor an existing JSON file"),
        ("{not json", "not a readable JSON config"),
        ("[1, 2]", "a config must be a JSON object of fields"),
        ('{"base": "huge"}', "base must be one of ['lean', 'paper'], got 'huge'"),
    ],
)
def test_bad_configs_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "c.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(CardioInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _read(str(path))
