"""Planning, sharding and writing a labelled morph dataset with a tiny label VAE."""

from __future__ import annotations

import csv
import operator

import numpy as np
import pytest
from tiny_models import tiny_label_vae_checkpoint, write_tiny_cohort

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.nifti import read_label_volume
from cardio_explorer.engine.label_vae import dataset
from cardio_explorer.engine.label_vae.dataset import (
    MANIFEST_COLUMNS,
    SynthesisJob,
    alpha_tag,
    manifest_name,
    plan_jobs,
    run_job,
    run_jobs,
    shard,
    write_dataset,
)
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.metrics.phenotypes import measure_phenotypes


@pytest.fixture(scope="module")
def morph(tmp_path_factory):
    cohort = write_tiny_cohort(tmp_path_factory.mktemp("cohort"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return PathologyMorph.from_checkpoint(tiny_label_vae_checkpoint(cohort, path, balanced=True))


def read_manifest(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_plan_covers_every_combination_in_a_fixed_order(morph):
    jobs = plan_jobs(morph.atlas, seeds=[0, 3, 5], alphas=[0.0, 0.5, 1.0])
    # the tiny atlas has NOR sources p1, p2 and pathology groups DCM, HCM
    assert len(jobs) == 2 * 2 * 3 * 3
    assert jobs[0] == SynthesisJob("p1", "DCM", 0, 0.0, True)
    assert jobs[1] == SynthesisJob("p1", "DCM", 0, 0.5, True)
    assert jobs[-1] == SynthesisJob("p2", "HCM", 5, 1.0, True)
    assert len({j.stem for j in jobs}) == len(jobs)
    assert jobs == plan_jobs(morph.atlas, seeds=[0, 3, 5], alphas=[0.0, 0.5, 1.0])
    chosen = plan_jobs(morph.atlas, ["hcm"], ["p2"], [7], [0.25], correlated=False)
    assert chosen == [SynthesisJob("p2", "HCM", 7, 0.25, False)]
    assert chosen[0].file_name("ES") == "p2_HCM_s7_a025_ES_gt.nii.gz"


def test_alpha_tags_are_three_digit_percent():
    assert [alpha_tag(a) for a in (0.0, 0.05, 0.25, 0.5, 1.0)] == [
        "000",
        "005",
        "025",
        "050",
        "100",
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40])
def test_shards_are_disjoint_and_cover_every_job(morph, n):
    jobs = plan_jobs(morph.atlas, seeds=[0, 1, 2], alphas=[0.0, 0.5, 1.0])
    shards = [shard(jobs, k, n) for k in range(1, n + 1)]
    names = [j.stem for part in shards for j in part]
    assert len(names) == len(set(names)) == len(jobs)
    assert set(names) == {j.stem for j in jobs}
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert manifest_name(1, n) == ("manifest.csv" if n == 1 else f"manifest-1-of-{n}.csv")


@pytest.mark.parametrize(("k", "n"), [(0, 2), (3, 2), (1, 0), (-1, 3), ("a", 2)])
def test_bad_shard_is_refused(morph, k, n):
    with pytest.raises(CardioInputError, match=r"^shard: "):
        shard(plan_jobs(morph.atlas, seeds=[0]), k, n)


@pytest.mark.parametrize(
    ("kwargs", "thing", "text"),
    [
        ({"groups": ["XYZ"]}, "groups", "unknown group"),
        ({"groups": ["MINF"]}, "groups", "not in the latent atlas"),
        ({"groups": ["DCM", "dcm"]}, "groups", "twice"),
        ({"groups": []}, "groups", "no group"),
        ({"subjects": ["p9"]}, "subjects", "unknown id 'p9'"),
        ({"subjects": ["p3"]}, "subjects", "unknown id 'p3'"),  # a DCM subject is no source
        ({"seeds": [-1]}, "seeds", ">= 0"),
        ({"seeds": [1, 1]}, "seeds", "twice"),
        ({"seeds": []}, "seeds", "no seed"),
        ({"alphas": [0.5, 1.5]}, "alpha", r"\[0, 1\]"),
        ({"alphas": [float("nan")]}, "alpha", r"\[0, 1\]"),
        ({"alphas": [0.5, 0.501]}, "alphas", "file tag a050"),
        ({"alphas": []}, "alphas", "no alpha"),
    ],
)
def test_bad_plans_give_one_clear_error(morph, kwargs, thing, text):
    with pytest.raises(CardioInputError, match=text) as info:
        plan_jobs(morph.atlas, **kwargs)
    assert info.value.thing == thing
    assert "\n" not in str(info.value)


def test_written_files_have_the_morphs_labels_and_geometry(morph, tmp_path):
    jobs = plan_jobs(morph.atlas, ["DCM"], ["p2"], [4], [0.0, 1.0])
    results = list(run_jobs(morph, jobs, tmp_path))
    assert [r.job for r in results] == jobs
    for result in results:
        job = result.job
        assert set(result.files) == {"ED", "ES"}
        read = {}
        for phase, path in result.files.items():
            assert path == tmp_path / job.file_name(phase)
            read[phase] = read_label_volume(path)
            expected = morph.morph(job.subject_id, job.group, phase, job.alpha, seed=job.seed)
            assert read[phase].spatial_shape[0] == 32
            np.testing.assert_array_equal(read[phase].data, expected.labels.data)
            np.testing.assert_allclose(read[phase].affine, expected.labels.affine, atol=1e-4)
        measured = measure_phenotypes(read["ED"], read["ES"])
        assert measured.as_dict() == pytest.approx(result.phenotypes.as_dict(), abs=1e-6)
        row = result.manifest_row()
        assert tuple(row) == MANIFEST_COLUMNS
        assert row["file_ed"] == job.file_name("ED")
        assert isinstance(row["meets_group_rule"], bool)


def test_acdc_labels_and_a_single_phase(morph, tmp_path):
    job = plan_jobs(morph.atlas, ["HCM"], ["p1"], [2], [0.5])[0]
    internal_dir, acdc_dir = tmp_path / "internal", tmp_path / "acdc"
    internal_dir.mkdir()
    acdc_dir.mkdir()
    internal = run_job(morph, job, internal_dir)
    acdc = run_job(morph, job, acdc_dir, phases=["ed"], acdc_labels=True)
    assert set(acdc.files) == {"ED"}
    assert acdc.manifest_row()["file_es"] == ""
    # phenotypes still use both phases, and do not depend on the numbering on disk
    assert acdc.phenotypes == internal.phenotypes
    back = read_label_volume(acdc.files["ED"], acdc_labels=True)
    np.testing.assert_array_equal(back.data, read_label_volume(internal.files["ED"]).data)
    with pytest.raises(CardioInputError, match=r"^phases: "):
        run_job(morph, job, acdc_dir, phases=["MID"])


def test_dataset_folder_holds_files_labels_and_manifest(morph, tmp_path):
    jobs = plan_jobs(morph.atlas, ["DCM", "HCM"], ["p1"], [0], [0.0, 1.0])
    out = tmp_path / "data"
    result = write_dataset(morph, jobs, out)
    assert result.folder == out
    assert result.n_files == 2 * len(jobs)
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == len(jobs)
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    listed = {row["file_ed"] for row in rows} | {row["file_es"] for row in rows}
    on_disk = {p.name for p in out.glob("*.nii.gz")}
    assert listed == on_disk
    assert len(on_disk) == result.n_files
    assert (out / "labels.txt").is_file()
    assert [(r["subject"], r["group"], r["alpha"]) for r in rows] == [
        (j.subject_id, j.group, str(j.alpha)) for j in jobs
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging left behind

    with pytest.raises(CardioInputError, match="not empty"):
        write_dataset(morph, jobs, out)
    one = write_dataset(morph, jobs[:1], out, overwrite=True, shard_of=(2, 3))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "labels.txt",
            "manifest-2-of-3.csv",
            "provenance-2-of-3.json",
            jobs[0].file_name("ED"),
            jobs[0].file_name("ES"),
        ]
    )
    assert one.manifest == out / "manifest-2-of-3.csv"


def test_shard_manifests_concatenate_to_the_whole(morph, tmp_path):
    jobs = plan_jobs(morph.atlas, ["DCM"], ["p1", "p2"], [1], [0.0, 1.0])
    whole = read_manifest(write_dataset(morph, jobs, tmp_path / "all").manifest)
    parts = []
    for k in (1, 2, 3):
        result = write_dataset(morph, shard(jobs, k, 3), tmp_path / f"s{k}", shard_of=(k, 3))
        assert result.manifest.name == f"manifest-{k}-of-3.csv"
        parts += read_manifest(result.manifest)
    key = operator.itemgetter("subject", "seed", "alpha")
    assert sorted(parts, key=key) == sorted(whole, key=key)


def test_a_failure_leaves_nothing_behind(morph, tmp_path, monkeypatch):
    jobs = plan_jobs(morph.atlas, ["DCM"], ["p1"], [0], [0.0, 1.0])

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(dataset, "measure_phenotypes", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataset(morph, jobs, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
