"""Running plans: files match the morphs, layouts, a resumed run, shards, the writer pool."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK
from tiny_models import tiny_label_vae_checkpoint, tiny_spade_checkpoint, write_tiny_cohort

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory import cases as cases_module
from cardio_explorer.engine.factory.plan import Plan
from cardio_explorer.engine.factory.run import Ranks, run_plan
from cardio_explorer.engine.factory.writers import MANIFEST_COLUMNS
from cardio_explorer.engine.io.acdc import read_acdc_subject
from cardio_explorer.engine.io.nifti import read_label_volume
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes
from cardio_explorer.engine.spade.network import load_spade


@pytest.fixture(scope="module")
def morph(tmp_path_factory):
    cohort = write_tiny_cohort(tmp_path_factory.mktemp("cohort"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return PathologyMorph.from_checkpoint(tiny_label_vae_checkpoint(cohort, path, balanced=True))


@pytest.fixture(scope="module")
def spade(tmp_path_factory):
    return load_spade(tiny_spade_checkpoint(tmp_path_factory.mktemp("spade") / "s.safetensors"))


def rows_of(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_files_hold_the_morphs_labels_in_the_values_asked(morph, tmp_path):
    plan = Plan(groups=("DCM",), subjects=("p2",), seeds=(4,), alphas=(0.0, 1.0))
    for labels, acdc in (("acdc", True), ("app", False)):
        out = tmp_path / labels
        run_plan(morph, None, plan.with_overrides({"labels": labels}).resolve(morph.atlas), out)
        rows = rows_of(out / "manifest.csv")
        assert tuple(rows[0]) == MANIFEST_COLUMNS
        for row in rows:
            read = {}
            for phase in ("ED", "ES"):
                read[phase] = read_label_volume(
                    out / row[f"file_{phase.lower()}"], acdc_labels=acdc
                )
                made = morph.morph("p2", "DCM", phase, float(row["alpha"]), seed=4).labels
                np.testing.assert_array_equal(read[phase].data, made.data)
                np.testing.assert_allclose(read[phase].affine, made.affine, atol=1e-4)
            measured = measure_phenotypes(read["ED"], read["ES"]).as_dict()
            assert float(row["lvedv_ml"]) == pytest.approx(measured["lvedv_ml"], abs=1e-3)
            assert row["label_values"] == labels
        table = (out / "labels.txt").read_text().splitlines()
        assert table[-3].endswith('"RV blood pool"' if acdc else '"LV blood pool"')


def test_nnunet_layout_with_images(morph, spade, tmp_path):
    plan = Plan(groups=("HCM",), seeds=(0,), alphas=(0.5,), layout="nnunet", images=True)
    out = tmp_path / "nn"
    run_plan(morph, spade, plan.resolve(morph.atlas), out, workers=2)
    info = json.loads((out / "dataset.json").read_text())
    assert info["numTraining"] == 2 * 2  # 2 sources x (ED, ES)
    assert info["labels"] == {"background": 0, "RV": 1, "MYO": 2, "LV": 3}
    assert info["file_ending"] == ".nii.gz"
    labels = sorted(p.name for p in (out / "labelsTr").iterdir())
    images = sorted(p.name for p in (out / "imagesTr").iterdir())
    assert labels == [
        "p1_HCM_s0_a050_ED.nii.gz",
        "p1_HCM_s0_a050_ES.nii.gz",
        "p2_HCM_s0_a050_ED.nii.gz",
        "p2_HCM_s0_a050_ES.nii.gz",
    ]
    assert images == [name.replace(".nii.gz", "_0000.nii.gz") for name in labels]
    image = SimpleITK.ReadImage(str(out / "imagesTr" / images[0]))
    label = SimpleITK.ReadImage(str(out / "labelsTr" / labels[0]))
    assert image.GetSize() == label.GetSize() == (32, 32, 32)
    assert np.allclose(image.GetSpacing(), label.GetSpacing())
    pixels = SimpleITK.GetArrayFromImage(image)
    assert -1.0 <= pixels.min() < pixels.max() <= 1.0
    rows = rows_of(out / "manifest.csv")
    assert {r["style_seed"] for r in rows} != {""}
    assert rows[0]["image_ed"] == "imagesTr/" + images[0]


def test_acdc_layout_reads_back_as_acdc_subjects(morph, tmp_path):
    plan = Plan(groups=("DCM",), subjects=("p1",), seeds=(1,), alphas=(1.0,), layout="acdc")
    out = tmp_path / "acdc"
    run_plan(morph, None, plan.resolve(morph.atlas), out)
    subject = read_acdc_subject(out / "p1_DCM_s1_a100")
    assert subject.group == "DCM"
    made = morph.morph("p1", "DCM", "ES", 1.0, seed=1).labels
    np.testing.assert_array_equal(subject.labels[1].data, made.data)


def test_acdc_layout_from_references_with_height_and_weight_only(morph, tmp_path):
    # An ACDC-trained atlas knows its reference patients' height and weight, nothing else
    from dataclasses import replace

    from cardio_explorer.engine.io.acdc import read_info_cfg
    from cardio_explorer.engine.subject import BodySize

    refs = [
        replace(r, conditions=None, body=BodySize(180.0, 80.0))
        for r in morph.atlas.references.values()
    ]
    acdc_like = PathologyMorph(morph.model, morph.atlas.with_references(refs))
    plan = Plan(groups=("DCM",), subjects=("p1",), seeds=(1,), alphas=(1.0,), layout="acdc")
    out = tmp_path / "acdc"
    run_plan(acdc_like, None, plan.resolve(acdc_like.atlas), out)
    info = read_info_cfg(out / "p1_DCM_s1_a100" / "Info.cfg")
    assert (info["Height"], info["Weight"], info["Group"]) == (180.0, 80.0, "DCM")
    assert "Age" not in info
    assert "SBP" not in info
    # and without either the plan is refused before any work
    bare = [replace(r, conditions=None, body=None) for r in morph.atlas.references.values()]
    with pytest.raises(CardioInputError, match="height and weight"):
        plan.resolve(morph.atlas.with_references(bare))


def test_an_interrupted_run_resumes_to_the_same_dataset(morph, tmp_path, monkeypatch):
    plan = Plan(groups=("DCM", "HCM"), seeds=(0, 1), alphas=(0.0, 1.0)).resolve(morph.atlas)
    whole = tmp_path / "whole"
    run_plan(morph, None, plan, whole, workers=0)
    real, calls = cases_module.compute_unit, []

    def dies_at_the_fourth_unit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr("cardio_explorer.engine.factory.run.compute_unit", dies_at_the_fourth_unit)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_plan(morph, None, plan, out, workers=0)
    assert not (out / "manifest.csv").exists()
    # written in this process: each case is logged as soon as its files are whole
    logged = [r for log in (out / ".parts").glob("*.csv") for r in rows_of(log)]
    assert len(logged) == 3 * 2  # the three units computed, two alphas each
    for row in logged:
        assert read_label_volume(out / row["file_ed"], acdc_labels=True).data.any()
    for path in out.glob("*.nii.gz"):
        read_label_volume(path)
    assert not list(out.glob(".*.nii*"))  # no temporary file left
    monkeypatch.undo()
    # another plan is refused; the same plan resumes
    with pytest.raises(CardioInputError, match="another plan"):
        run_plan(morph, None, Plan(seeds=(9,)).resolve(morph.atlas), out)
    result = run_plan(morph, None, plan, out, workers=2)
    assert result.n_skipped == len(logged)
    assert result.n_written == plan.n_cases - len(logged)
    assert rows_of(out / "manifest.csv") == rows_of(whole / "manifest.csv")
    for name in (p.name for p in whole.glob("*.nii.gz")):
        assert (
            read_label_volume(out / name).data.tobytes()
            == read_label_volume(whole / name).data.tobytes()
        )
    assert not (out / ".parts").exists()
    again = run_plan(morph, None, plan, out)  # a finished dataset: nothing to do
    assert (again.n_written, again.n_skipped) == (0, plan.n_cases)


def test_shards_write_disjoint_parts_of_the_whole(morph, tmp_path):
    plan = Plan(groups=("DCM",), seeds=(1, 2), alphas=(0.0, 1.0)).resolve(morph.atlas)
    whole = rows_of(run_plan(morph, None, plan, tmp_path / "all").manifest)
    parts = []
    for k in (1, 2, 3):
        ranks = Ranks(rank=k - 1, world=3, shard=True)
        result = run_plan(morph, None, plan, tmp_path / f"s{k}", ranks=ranks)
        assert result.manifest.name == f"manifest-{k}-of-3.csv"
        assert (tmp_path / f"s{k}" / f"provenance-{k}-of-3.json").is_file()
        parts += rows_of(result.manifest)
    assert sorted(parts, key=lambda r: int(r["case_index"])) == whole
