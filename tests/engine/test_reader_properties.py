"""Property tests: every reader either reads its input or raises CardioInputError, never else.

Hypothesis searches NIfTI header fields, Info.cfg text, conditions CSVs and checkpoint headers
with the fixed, derandomised profile registered in tests/conftest.py.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file
from tiny_models import TINY

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.acdc import read_info_cfg
from cardio_explorer.engine.io.generic import read_conditions_csv
from cardio_explorer.engine.io.nifti import read_image_volume, read_label_volume
from cardio_explorer.engine.label_vae.network import MODEL_PREFIX, build_label_vae, load_label_vae
from cardio_explorer.engine.nn.checkpoint import load_checkpoint, read_checkpoint_header

# Integers and floats a hostile header may hold: tiny, huge, negative, NaN, inf.
WILD_INTS = st.one_of(st.integers(-5, 40), st.integers(-(2**31), 2**31 - 1))
WILD_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, 1.0, 1.5, 1e30, -1e30, float("nan"), float("inf")]),
)


def _reads_or_refuses(read, *args, **kwargs) -> None:
    """Call a reader; a CardioInputError is a valid answer, anything else fails the test."""
    try:
        read(*args, **kwargs)
    except CardioInputError as error:
        message = str(error)
    else:
        return
    assert message.strip()
    assert "\n" not in message  # one line


# NIfTI headers ---------------------------------------------------------------------------------
def _nifti_bytes(fields: dict) -> bytes:
    """A small valid label NIfTI-1, with some header fields overwritten as given (no checks)."""
    data = np.ones((4, 3, 2), dtype=np.uint8)
    image = nib.Nifti1Image(data, np.diag([1.5, 1.5, 8.0, 1.0]))
    image.header.set_data_dtype(np.uint8)
    blob = bytearray(image.to_bytes())
    struct = np.frombuffer(bytes(blob[:348]), dtype=image.header.structarr.dtype).copy()
    for key, value in fields.items():
        try:
            struct[key] = value
        except (OverflowError, ValueError, TypeError):
            continue  # the field cannot hold it (e.g. 2**40 in an int16): leave as is
    blob[:348] = struct.tobytes()
    return bytes(blob)


NIFTI_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "dim": st.lists(WILD_INTS, min_size=8, max_size=8),
        "pixdim": st.lists(WILD_FLOATS, min_size=8, max_size=8),
        "datatype": st.sampled_from([0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1536, 2304, 7, 999]),
        "bitpix": WILD_INTS,
        "vox_offset": st.one_of(WILD_FLOATS, st.just(352.0)),
        "scl_slope": WILD_FLOATS,
        "scl_inter": WILD_FLOATS,
        "qform_code": st.integers(-3, 5),
        "sform_code": st.integers(-3, 5),
        "srow_x": st.lists(WILD_FLOATS, min_size=4, max_size=4),
        "quatern_b": WILD_FLOATS,
        "xyzt_units": st.integers(0, 255),
    },
)


@given(fields=NIFTI_FIELDS, compressed=st.booleans())
def test_nifti_header_fields_read_or_refuse(tmp_path_factory, fields, compressed):
    folder = tmp_path_factory.mktemp("nii")
    blob = _nifti_bytes(fields)
    path = folder / ("x.nii.gz" if compressed else "x.nii")
    path.write_bytes(gzip.compress(blob) if compressed else blob)
    _reads_or_refuses(read_label_volume, path)
    _reads_or_refuses(read_image_volume, path)


# Info.cfg --------------------------------------------------------------------------------------
INFO_KEYS = st.sampled_from(["ED", "ES", "NbFrame", "Group", "Height", "Weight", "Age", "SBP"])
INFO_VALUES = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    WILD_FLOATS.map(repr),
    st.sampled_from(["NOR", "DCM", "RV", "", "nan", "inf", "1e999", "F", "M", "x" * 5000]),
    st.text(max_size=30),
)


@given(
    lines=st.lists(
        st.one_of(
            st.tuples(INFO_KEYS, INFO_VALUES).map(lambda kv: f"{kv[0]}: {kv[1]}"),
            st.text(max_size=40),
        ),
        max_size=12,
    )
)
def test_info_cfg_reads_or_refuses(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("info") / "Info.cfg"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    _reads_or_refuses(read_info_cfg, path)


# conditions CSV --------------------------------------------------------------------------------
CSV_CELLS = st.one_of(
    INFO_VALUES,
    st.sampled_from(['"', '""', "a,b", ";", "\t", "\x00", "NaN", "-inf", "F", "female", "300"]),
)


@given(
    header=st.lists(
        st.sampled_from(["subject", "group", "age", "sex", "height", "weight", "sbp", "ed", "x"]),
        min_size=1,
        max_size=9,
    ),
    rows=st.lists(st.lists(CSV_CELLS, max_size=10), max_size=6),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_conditions_csv_reads_or_refuses(tmp_path_factory, header, rows, delimiter):
    path = tmp_path_factory.mktemp("csv") / "conditions.csv"
    text = "\n".join(delimiter.join(row) for row in [header, *rows])
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        table = read_conditions_csv(path)
    except CardioInputError:
        return
    for entry in table.values():  # what is read is finite and within the bounds
        for name in ("age", "height", "weight", "sbp"):
            assert entry[name] is None or math.isfinite(entry[name])


# checkpoint headers ----------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), WILD_INTS, st.floats(allow_nan=False), st.text(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
CONFIG_CHANGES = st.dictionaries(st.sampled_from(sorted(TINY.to_dict())), JSON_VALUES, max_size=3)


@pytest.fixture(scope="module")
def tiny_weights():
    torch.manual_seed(0)
    model = build_label_vae(TINY)
    return {MODEL_PREFIX + k: v.contiguous() for k, v in model.state_dict().items()}


@given(
    version=st.one_of(st.just(1), JSON_VALUES),
    kind=st.one_of(st.just("label_vae"), JSON_VALUES),
    config=st.one_of(CONFIG_CHANGES.map(lambda c: {**TINY.to_dict(), **c}), JSON_VALUES),
    extra=st.one_of(st.just({}), JSON_VALUES),
    raw=st.one_of(st.none(), st.text(max_size=20), st.just("[" * 5000)),
)
def test_checkpoint_header_reads_or_refuses(
    tmp_path_factory, tiny_weights, version, kind, config, extra, raw
):
    path = tmp_path_factory.mktemp("ckpt") / "x.safetensors"
    header = {"version": version, "kind": kind, "config": config, "extra": extra}
    text = raw if raw is not None else json.dumps(header)
    save_file(tiny_weights, str(path), metadata={"cardio_explorer": text})
    _reads_or_refuses(read_checkpoint_header, path)
    _reads_or_refuses(load_checkpoint, path)
    _reads_or_refuses(load_label_vae, path)


def test_the_unchanged_tiny_checkpoint_loads(tmp_path, tiny_weights):
    """The property above can succeed: its base case is a loadable checkpoint."""
    path = tmp_path / "x.safetensors"
    header = {"version": 1, "kind": "label_vae", "config": TINY.to_dict(), "extra": {}}
    save_file(tiny_weights, str(path), metadata={"cardio_explorer": json.dumps(header)})
    model, _ = load_label_vae(path)
    assert model.config == TINY


def test_the_unchanged_nifti_reads(tmp_path):
    path = tmp_path / "x.nii"
    Path(path).write_bytes(_nifti_bytes({}))
    assert read_label_volume(path).data.shape == (2, 3, 4)
