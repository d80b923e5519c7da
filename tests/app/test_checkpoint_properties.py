"""Property test: a checkpoint whose header has any one value replaced loads in the app or is
refused with CardioInputError, for each model kind (atlas, condition statistics, configs)."""

from __future__ import annotations

import json

import pytest
import torch
from hostile import rewrite_checkpoint
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open
from tiny_models import (
    tiny_cheart_checkpoint,
    tiny_label_vae_checkpoint,
    tiny_spade_checkpoint,
    write_tiny_cohort,
)

from cardio_explorer.app.jobs.models import load_slot
from cardio_explorer.engine.errors import CardioInputError

REPLACEMENTS = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
        st.sampled_from(["../../x", "/abs", "NOR", "ED", "F"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value, prefix=()):
    """Every (path) to a value inside a JSON document, containers included."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):  # a few items of long arrays are enough
            yield from _paths(child, (*prefix, index))


def _replaced(document, path, new):
    if not path:
        return new
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return document


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    cohort = write_tiny_cohort(root / "cohort")
    paths = {
        "label_vae": tiny_label_vae_checkpoint(cohort, root / "label_vae.safetensors"),
        "cheart": tiny_cheart_checkpoint(root / "cheart.safetensors"),
        "spade": tiny_spade_checkpoint(root / "spade.safetensors"),
    }
    headers = {}
    for kind, path in paths.items():
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads(handle.metadata()["cardio_explorer"])
        headers[kind] = (path, sorted(_paths(header), key=repr))
    return headers


@pytest.mark.parametrize("kind", ["label_vae", "cheart", "spade"])
@given(pick=st.integers(0, 10**6), new=REPLACEMENTS)
def test_any_header_value_replaced_loads_or_is_refused(
    checkpoints, tmp_path_factory, kind, pick, new
):
    source, paths = checkpoints[kind]
    path = paths[pick % len(paths)]
    target = tmp_path_factory.mktemp("h") / "h.safetensors"
    rewrite_checkpoint(source, target, header=lambda d: _replaced(d, path, new))
    try:
        load_slot(kind, target, torch.device("cpu"))
    except CardioInputError as error:
        message = str(error)
    else:
        return
    assert "\n" not in message  # one line


@pytest.mark.parametrize("kind", ["label_vae", "cheart", "spade"])
def test_the_app_reads_and_hashes_a_checkpoint_once(tmp_path, monkeypatch, kind):
    from cardio_explorer.app.jobs import models
    from cardio_explorer.engine.nn import checkpoint as checkpoint_module

    paths = {
        "label_vae": lambda: tiny_label_vae_checkpoint(
            write_tiny_cohort(tmp_path), tmp_path / "vae.safetensors"
        ),
        "cheart": lambda: tiny_cheart_checkpoint(tmp_path / "cheart.safetensors"),
        "spade": lambda: tiny_spade_checkpoint(tmp_path / "spade.safetensors"),
    }
    path = paths[kind]()
    calls = []
    for name in ("read_checkpoint_header", "file_sha256", "load_file"):
        real = getattr(checkpoint_module, name)
        monkeypatch.setattr(
            checkpoint_module,
            name,
            lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k),
        )
    steps = models.open_checkpoint(path, torch.device("cpu"))  # no kind: the header's
    progress = []
    while True:
        try:
            progress.append(next(steps))
        except StopIteration as done:
            slot = done.value
            break
    assert sorted(calls) == ["file_sha256", "load_file", "read_checkpoint_header"]
    assert (slot.kind, slot.path, slot.ready, len(slot.sha256)) == (kind, path, True, 64)
    assert slot.sha256 == checkpoint_module.file_sha256(path)
    assert len(progress) == 2
    assert slot.trained_on  # the About box's line, from the same read
    with pytest.raises(CardioInputError, match=f"is a {kind} checkpoint, not a"):
        models.load_slot("spade" if kind != "spade" else "cheart", path, torch.device("cpu"))
