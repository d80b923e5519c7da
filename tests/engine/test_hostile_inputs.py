"""One test per class of bad input to the engine: sizes over the limits (refused before any
allocation), unsafe ids and paths, broken checkpoints, bad numbers in tables."""

from __future__ import annotations

import dataclasses
import gzip
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import nifti_with_fields, rewrite_checkpoint, with_reference_id
from tiny_models import TINY, tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.acdc import read_info_cfg
from cardio_explorer.engine.io.generic import read_conditions_csv
from cardio_explorer.engine.io.nifti import read_image_volume, read_label_volume
from cardio_explorer.engine.io.nifti_load import _gunzip
from cardio_explorer.engine.io.safe_paths import check_safe_id, child_path
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.label_vae.network import MODEL_PREFIX, build_label_vae, load_label_vae
from cardio_explorer.engine.limits import LIMITS, MAX_CSV_FIELD, load_json
from cardio_explorer.engine.nn.checkpoint import save_checkpoint
from cardio_explorer.engine.subject import Conditions, Subject

HOSTILE_IDS = ("../../ESCAPED_patient011", "/tmp/ESCAPED_abs", "a/b", "..", ".hidden", "x\x00y")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cohort = write_tiny_cohort(tmp_path_factory.mktemp("cohort"))
    return tiny_label_vae_checkpoint(cohort, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def _peak_mb(fn) -> float:
    """Peak traced memory (numpy included) in MB while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


# sizes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [(2000, 2000, 1000), (30000, 30000, 30000)])
def test_a_header_claiming_a_huge_volume_is_refused_before_reading(tmp_path, dims):
    path = nifti_with_fields(tmp_path / "big.nii", {"dim": [3, *dims, 1, 1, 1, 1]}, pad=300_000)

    def read():
        with pytest.raises(CardioInputError, match=r"big\.nii: .* voxels is over the limit"):
            read_label_volume(path)

    assert _peak_mb(read) < 20


def test_a_gzip_that_expands_beyond_its_header_is_refused_while_streaming(tmp_path):
    good = nifti_with_fields(tmp_path / "good.nii", {})
    bomb = tmp_path / "bomb.nii.gz"
    bomb.write_bytes(gzip.compress(good.read_bytes() + bytes(64 * 2**20)))  # 65 KB on disk

    def read():
        with pytest.raises(CardioInputError, match=r"bomb\.nii\.gz: expands to more than"):
            read_label_volume(bomb)

    assert _peak_mb(read) < 8


def test_a_gzip_stream_stops_at_the_bound(tmp_path):
    bomb = tmp_path / "bomb.nii.gz"
    bomb.write_bytes(gzip.compress(bytes(8 * 2**20)))
    with (
        open(bomb, "rb") as handle,
        pytest.raises(CardioInputError, match=r"bomb\.nii\.gz: expands to more than 1,048,576"),
    ):
        _gunzip(bomb, handle, limit=2**20)


@pytest.mark.parametrize(
    ("pixdim", "problem"),
    [(1e30, "spacing"), (float("nan"), "NaN"), (float("inf"), "NaN or infinity")],
)
def test_absurd_pixdim_is_refused_naming_the_file(tmp_path, pixdim, problem):
    fields = {"pixdim": [1, pixdim, 1.5, 8, 1, 1, 1, 1], "sform_code": 0, "qform_code": 1}
    path = nifti_with_fields(tmp_path / "pix.nii", fields)
    with pytest.raises(CardioInputError, match=rf"pix\.nii: .*{problem}"):
        read_image_volume(path)


def test_a_singular_affine_names_the_file(tmp_path):
    fields = {"sform_code": 1, "srow_x": [0, 0, 0, 0], "srow_y": [0, 1, 0, 0]}
    path = nifti_with_fields(tmp_path / "flat.nii", fields)
    with pytest.raises(CardioInputError, match=r"flat\.nii: affine is singular"):
        read_label_volume(path)


def test_too_many_frames_are_refused(tmp_path):
    path = nifti_with_fields(tmp_path / "long.nii", {"dim": [4, 4, 3, 2, 1000, 1, 1, 1]})
    with pytest.raises(CardioInputError, match=r"long\.nii: 1,000 frames; at most 128"):
        read_label_volume(path)


def test_json_nested_too_deep_is_one_error():
    with pytest.raises(CardioInputError, match="nested deeper than 32"):
        load_json("header", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(CardioInputError, match="nested deeper than 32"):
        load_json("header", "[" * 40 + "]" * 40)
    assert isinstance(load_json("header", "[" * 30 + "]" * 30), list)  # 30 levels read


# ids and paths ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_unsafe_ids_are_refused(bad):
    with pytest.raises(CardioInputError, match="cannot name a file"):
        check_safe_id(bad, "subject id")
    with pytest.raises(CardioInputError, match="cannot name a file"):
        Subject(subject_id=bad)


@pytest.mark.parametrize("good", ["patient011", "A0S9V9", "case_01-b.v2"])
def test_real_ids_are_safe(good, tmp_path):
    assert check_safe_id(good) == good
    assert child_path(tmp_path, good + ".nii.gz").parent == tmp_path.resolve()


def test_a_path_out_of_its_folder_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    for name in ("../x.nii.gz", "/etc/x.nii.gz", "link/x.nii.gz", "."):
        with pytest.raises(CardioInputError, match="outside the output folder"):
            child_path(tmp_path / "out", name)


@pytest.mark.parametrize("bad", HOSTILE_IDS[:3])
def test_a_checkpoint_with_an_unsafe_reference_id_is_refused(checkpoint, tmp_path, bad):
    hostile = rewrite_checkpoint(checkpoint, tmp_path / "h.safetensors", with_reference_id(bad))
    with pytest.raises(CardioInputError, match=r"h\.safetensors: .*cannot name a file"):
        PathologyMorph.from_checkpoint(hostile)


# checkpoints -----------------------------------------------------------------------------------
def test_nan_weights_are_refused(checkpoint, tmp_path):
    def poison(tensors):
        name = next(k for k in tensors if k.startswith(MODEL_PREFIX) and k.endswith("weight"))
        tensors[name][..., 0] = float("nan")

    hostile = rewrite_checkpoint(checkpoint, tmp_path / "nan.safetensors", weights=poison)
    with pytest.raises(CardioInputError, match=r"nan\.safetensors: weight .* NaN or infinite"):
        load_label_vae(hostile)


@pytest.mark.parametrize("config", [[1, 2], "lean", 3, None])
def test_a_config_that_is_not_an_object_is_refused(checkpoint, tmp_path, config):
    def edit(data):
        data["config"] = config
        return data

    hostile = rewrite_checkpoint(checkpoint, tmp_path / "cfg.safetensors", header=edit)
    with pytest.raises(CardioInputError, match=r"cfg\.safetensors: .*config must be an object"):
        load_label_vae(hostile)


def test_a_config_claiming_a_huge_model_is_refused_without_building_it(tmp_path):
    torch.manual_seed(0)
    weights = {MODEL_PREFIX + k: v for k, v in build_label_vae(TINY).state_dict().items()}
    huge = dataclasses.replace(TINY, encoder_channels=(100_000, 100_000), encoder_fc=(10**6,))
    path = save_checkpoint(tmp_path / "huge.safetensors", "label_vae", huge.to_dict(), weights)

    def load():
        with pytest.raises(CardioInputError, match=r"huge\.safetensors: does not fit"):
            load_label_vae(path)

    assert _peak_mb(load) < 100


# tables ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_nan_and_inf_in_a_conditions_csv_are_refused(tmp_path, cell):
    path = tmp_path / "conditions.csv"
    path.write_text(f"subject,age,sex,height,weight,sbp\np1,{cell},F,165,60,120\n")
    with pytest.raises(CardioInputError, match=r"conditions\.csv row 2: age is not a finite"):
        read_conditions_csv(path)


def test_empty_cells_are_still_missing(tmp_path):
    path = tmp_path / "conditions.csv"
    path.write_text("subject,age,sex,height,weight,sbp\np1,,F,165,60,\n")
    assert read_conditions_csv(path)["p1"]["age"] is None


@pytest.mark.parametrize("size", [MAX_CSV_FIELD + 1, 200_000])
def test_a_csv_field_over_the_bound_is_refused(tmp_path, size):
    path = tmp_path / "conditions.csv"
    path.write_text(f"subject,group\np1,{'x' * size}\n")
    with pytest.raises(CardioInputError, match=r"conditions\.csv: "):
        read_conditions_csv(path)


@pytest.mark.parametrize(("name", "value"), [("age", 300), ("height", 1000), ("weight", 0.2)])
def test_conditions_out_of_bounds_are_refused_naming_the_source(tmp_path, name, value):
    path = tmp_path / "conditions.csv"
    row = {"age": 50, "height": 165, "weight": 60} | {name: value}
    path.write_text(
        f"subject,sex,age,height,weight\np1,F,{row['age']},{row['height']},{row['weight']}\n"
    )
    with pytest.raises(CardioInputError, match=rf"conditions\.csv row 2: {name} must be between"):
        read_conditions_csv(path)
    with pytest.raises(CardioInputError, match=rf"condition '{name}': {name} must be between"):
        Conditions(**({"age": 50, "sex": "F", "height": 165, "weight": 60, "sbp": 120} | row))


def test_info_cfg_age_out_of_bounds_names_the_file(tmp_path):
    path = tmp_path / "Info.cfg"
    path.write_text("ED: 1\nES: 2\nNbFrame: 3\nGroup: NOR\nHeight: 170\nWeight: 70\nAge: 300\n")
    with pytest.raises(CardioInputError, match=r"Info\.cfg: age must be between 0 and 130"):
        read_info_cfg(path)


def test_a_good_tiny_checkpoint_still_loads(checkpoint):
    morph = PathologyMorph.from_checkpoint(checkpoint)
    assert morph.atlas.reference_ids
    assert np.isfinite(
        morph.morph(morph.atlas.reference_ids[0], "DCM", "ED", 0.5).labels.data
    ).all()


ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_limits_table_is_the_one_in_the_code():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for what, bound, where in LIMITS:
        assert f"| {what} | {bound} | {where} |" in readme, what


def test_nothing_unpickles_or_evaluates_code():
    """No torch.load, pickle, eval/exec, yaml.load or shell=True in the app or the engine."""
    unsafe = re.compile(r"torch\.load\(|\bpickle\b|(?<![.\w])(eval|exec)\(|yaml\.load\(|shell=True")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("app", "engine", "viewer")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if unsafe.search(line)
    ]
    assert found == []


def test_a_folder_with_too_many_subjects_is_refused(tmp_path, monkeypatch):
    from cardio_explorer.engine.io import common

    monkeypatch.setattr(common, "MAX_SUBJECTS", 2)
    assert common.select_ids(tmp_path, ["a", "b"], None) == ["a", "b"]
    with pytest.raises(CardioInputError, match="3 subjects; at most 2"):
        common.select_ids(tmp_path, ["a", "b", "c"], None)
