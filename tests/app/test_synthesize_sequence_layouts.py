"""4D sequences in ``--layout acdc`` (patient folders) and ``--layout nnunet`` (a 3D case per
frame): read back with SimpleITK and the project's ACDC reader, the same labels as the flat
layout, a resumed run, and bad combinations refused before any work."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK
from synthesize_helpers import read_manifest as rows_of
from tiny_models import tiny_cheart_checkpoint, tiny_spade_checkpoint

from cardio_explorer.app.cli import main
from cardio_explorer.engine.cheart.inference import end_systolic_frame
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.acdc import read_acdc_subject, read_info_cfg
from cardio_explorer.engine.io.nifti import read_label_volume

GRID = ("--conditions-grid", "age=40,70;sex=M", "--seeds", "0-1")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    cheart = tiny_cheart_checkpoint(folder / "c.safetensors")
    return cheart, tiny_spade_checkpoint(folder / "s.safetensors")


@pytest.fixture(scope="module")
def flat(models, tmp_path_factory):
    """The grid written flat with images: the labels every layout must hold."""
    out = tmp_path_factory.mktemp("flat") / "flat"
    assert synthesize(models, out, *GRID, "--images") == 0
    return out


def synthesize(models, out, *extra):
    cheart, spade = models
    argv = ["synthesize", "--cheart-checkpoint", str(cheart), "--spade-checkpoint", str(spade)]
    return main([*argv, "--out", str(out), "--device", "cpu", "--no-progress", *extra])


def test_acdc_layout_is_one_patient_folder_per_sequence(models, flat, tmp_path):
    out = tmp_path / "acdc"
    assert synthesize(models, out, *GRID, "--images", "--layout", "acdc", "--workers", "2") == 0
    rows = rows_of(out / "manifest.csv")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [r["case"] for r in rows]
    for row, whole in zip(rows, rows_of(flat / "manifest.csv"), strict=True):
        case = row["case"]
        folder = out / case
        assert row["file_labels"] == f"{case}/{case}_4d_gt.nii.gz"
        assert row["file_images"] == f"{case}/{case}_4d.nii.gz"
        # the image as ACDC's: 4D, time last, the frame duration in pixdim[4]
        image = SimpleITK.ReadImage(str(folder / f"{case}_4d.nii.gz"))
        n_frames = int(row["n_frames"])
        assert image.GetDimension() == 4
        assert image.GetSize()[3] == n_frames
        header = nib.load(str(folder / f"{case}_4d.nii.gz")).header
        assert header.get_zooms()[3] == pytest.approx(float(row["frame_duration_ms"]), abs=1e-3)
        labels = read_label_volume(folder / f"{case}_4d_gt.nii.gz", acdc_labels=True)
        made = read_label_volume(flat / whole["file_labels"], acdc_labels=True)
        np.testing.assert_array_equal(labels.data, made.data)
        # Info.cfg: ES is the frame of least LV blood of the labels written (1-based)
        info = read_info_cfg(folder / "Info.cfg")
        es = end_systolic_frame(labels)
        assert (int(info["ED"]), int(info["ES"]), int(info["NbFrame"])) == (1, es + 1, n_frames)
        assert int(row["es_frame"]) == es
        assert info["Group"] == "NOR"
        assert float(info["Age"]) == float(row["age"])
        assert float(info["Height"]) == pytest.approx(float(row["height"]), abs=1e-3)
        # the project's ACDC reader takes the folder: ED and ES frames, and every frame
        subject = read_acdc_subject(folder, images=True)
        assert sorted(subject.labels) == sorted({0, es})
        np.testing.assert_array_equal(subject.labels[es].data, labels.data[es])
        assert subject.images[0].data.shape == labels.data[0].shape
        every = read_acdc_subject(folder, frames="all")
        assert len(every.labels) == n_frames
        frame_gt = SimpleITK.ReadImage(str(folder / f"{case}_frame{es + 1:02d}_gt.nii.gz"))
        assert frame_gt.GetDimension() == 3
        np.testing.assert_allclose(frame_gt.GetSpacing(), image.GetSpacing()[:3])


@pytest.mark.parametrize("frames", ["all", "ed-es"])
def test_nnunet_layout_has_a_3d_case_per_frame(models, flat, tmp_path, frames):
    out = tmp_path / frames
    assert synthesize(models, out, *GRID, "--images", "--layout", "nnunet", "--frames", frames) == 0
    info = json.loads((out / "dataset.json").read_text())
    rows = rows_of(out / "manifest.csv")
    expected = []
    for row, whole in zip(rows, rows_of(flat / "manifest.csv"), strict=True):
        made = read_label_volume(flat / whole["file_labels"], acdc_labels=True)
        es = int(row["es_frame"])
        chosen = range(made.n_frames) if frames == "all" else sorted({0, es})
        names = [f"{row['case']}_f{t + 1:02d}" for t in chosen]
        assert row["file_labels"].split(";") == [f"labelsTr/{n}.nii.gz" for n in names]
        assert row["file_images"].split(";") == [f"imagesTr/{n}_0000.nii.gz" for n in names]
        for t, name in zip(chosen, names, strict=True):
            label = SimpleITK.ReadImage(str(out / "labelsTr" / f"{name}.nii.gz"))
            image = SimpleITK.ReadImage(str(out / "imagesTr" / f"{name}_0000.nii.gz"))
            assert label.GetDimension() == image.GetDimension() == 3
            assert label.GetSize() == image.GetSize()
            read = read_label_volume(out / "labelsTr" / f"{name}.nii.gz", acdc_labels=True)
            np.testing.assert_array_equal(read.data, made.data[t])
            np.testing.assert_allclose(read.affine, made.affine, atol=1e-4)
        expected += names
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == [
        f"{n}.nii.gz" for n in sorted(expected)
    ]
    assert info["numTraining"] == len(expected) == len(list((out / "imagesTr").iterdir()))
    assert info["labels"] == {"background": 0, "RV": 1, "MYO": 2, "LV": 3}
    if frames == "all":
        assert len(expected) == 4 * 6  # 2 ages x 2 seeds, 6 frames each


def test_an_interrupted_nnunet_sequence_run_resumes_to_the_same_files(
    models, tmp_path, monkeypatch
):
    extra = (*GRID, "--images", "--layout", "nnunet", "--workers", "0")
    whole = tmp_path / "whole"
    assert synthesize(models, whole, *extra) == 0
    from cardio_explorer.engine.factory.sequences import SequenceWork

    real, calls = SequenceWork.compute, []

    def dies_at_the_second_unit(self, unit, wanted):
        calls.append(unit)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, unit, wanted)

    monkeypatch.setattr(SequenceWork, "compute", dies_at_the_second_unit)
    out = tmp_path / "out"
    assert synthesize(models, out, *extra) == 130  # the CLI's exit code for an interrupt
    assert not (out / "manifest.csv").exists()
    logged = [r for log in (out / ".parts").glob("*.csv") for r in rows_of(log)]
    assert len(logged) == 2  # the first unit: one condition set, two seeds
    assert not list(out.glob("*Tr/.*"))  # no temporary file left
    monkeypatch.undo()
    assert synthesize(models, out, *extra) == 0
    assert rows_of(out / "manifest.csv") == rows_of(whole / "manifest.csv")
    names = sorted(p.relative_to(whole) for p in whole.glob("*Tr/*.nii.gz"))
    assert names == sorted(p.relative_to(out) for p in out.glob("*Tr/*.nii.gz"))
    for name in names:  # deterministic: the same bytes (gzip headers hold no time)
        assert (out / name).read_bytes() == (whole / name).read_bytes()
    assert (out / "dataset.json").read_text() == (whole / "dataset.json").read_text()


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (["--layout", "nnunet"], "--layout: nnunet needs images"),
        (["--layout", "acdc", "--frames", "ed-es"], "--frames: chooses the frames of --layout"),
        (["--frames", "ed-es", "--images"], "--frames: chooses the frames of --layout nnunet"),
    ],
)
def test_bad_sequence_layouts_are_one_line_and_write_nothing(models, tmp_path, capsys, extra, text):
    out = tmp_path / "never"
    assert synthesize(models, out, *GRID, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert text in err[0]
    assert not out.exists()


def test_an_unknown_group_in_the_conditions_csv_is_refused(models, tmp_path, capsys):
    table = tmp_path / "conditions.csv"
    table.write_text("subject,group,age,sex,height,weight,sbp\nann,XYZ,35,F,165,60,115\n")
    out = tmp_path / "never"
    assert synthesize(models, out, "--conditions-csv", str(table), "--layout", "acdc") == 2
    assert "ann: unknown Group 'XYZ'" in capsys.readouterr().err
    assert not out.exists()


def test_the_engine_refuses_the_same_combinations():
    from cardio_explorer.engine.factory.sequences import SequencePlan

    with pytest.raises(CardioInputError, match="nnunet needs images"):
        SequencePlan((), (), (0,), layout="nnunet")
