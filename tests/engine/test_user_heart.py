"""A user's own heart: read from a file, pair or folder; encoded; morphed; put back on its grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK
from tiny_models import heart_stack

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.heart import lv_is_label_three, read_heart
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume
from cardio_explorer.engine.labels import INTERNAL_TO_ACDC
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

SPACING = (8.0, 1.5, 1.5)


def _labels(radius: float, n: int = 6) -> LabelVolume:
    return LabelVolume.from_array(heart_stack(n, radius), SPACING)


def test_a_pair_named_es_and_ed_is_read_in_phase_order_with_images_beside(tmp_path):
    write_label_volume(_labels(5.0), tmp_path / "me_ED_gt.nii.gz")
    write_label_volume(_labels(3.5), tmp_path / "me_ES_gt.nii.gz")
    for phase in ("ED", "ES"):
        image = ImageVolume(np.random.default_rng(0).random((6, 32, 32)), _labels(1).affine)
        write_image_volume(image, tmp_path / f"me_{phase}.nii.gz")
    # the ES file alone finds its ED partner; ED is frame 0 whatever order was given
    subject = read_heart(tmp_path / "me_ES_gt.nii.gz")
    assert subject.subject_id == "me"
    assert (subject.ed_frame, subject.es_frame) == (0, 1)
    ed_lv = np.count_nonzero(subject.labels[0].data == 1)
    es_lv = np.count_nonzero(subject.labels[1].data == 1)
    assert ed_lv > es_lv
    assert sorted(subject.images) == [0, 1]


def test_an_unnamed_pair_is_ordered_by_lv_cavity(tmp_path):
    write_label_volume(_labels(3.5), tmp_path / "a.nii.gz")
    write_label_volume(_labels(5.0), tmp_path / "b.nii.gz")
    subject = read_heart([tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"])
    lv = [np.count_nonzero(subject.labels[t].data == 1) for t in (0, 1)]
    assert lv[0] > lv[1]
    assert any("cavity" in n for n in subject.info["notes"])


def test_a_lone_3d_file_is_ed_only_and_acdc_values_are_recognised(tmp_path):
    acdc = np.asarray(INTERNAL_TO_ACDC, dtype=np.uint8)[heart_stack(6, 5.0)]
    write_label_volume(LabelVolume.from_array(acdc, SPACING), tmp_path / "heart.nii.gz")
    assert lv_is_label_three(LabelVolume.from_array(acdc, SPACING))
    subject = read_heart(tmp_path / "heart.nii.gz")
    assert subject.es_frame is None
    assert list(subject.labels) == [0]
    np.testing.assert_array_equal(subject.labels[0].data, heart_stack(6, 5.0))


def test_a_4d_file_takes_the_largest_and_smallest_lv_as_ed_and_es(tmp_path):
    frames = np.stack([heart_stack(6, r) for r in (4.0, 5.0, 3.0, 4.5)])
    write_label_volume(LabelVolume.from_array(frames, SPACING), tmp_path / "cine.nii.gz")
    subject = read_heart(tmp_path / "cine.nii.gz")
    assert (subject.ed_frame, subject.es_frame) == (1, 2)


def test_an_acdc_subject_folder_is_read_whole(tmp_path):
    from tiny_models import write_tiny_cohort

    root = write_tiny_cohort(tmp_path / "cohort")
    subject = read_heart(root / "p1")
    assert subject.subject_id == "p1"
    assert subject.group == "NOR"
    assert subject.es_frame is not None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"this is not a nifti file at all", "p.nii.gz"),
        (b"", "p.nii.gz"),
    ],
)
def test_a_corrupt_file_is_one_clear_error_naming_it(tmp_path, content, problem):
    bad = tmp_path / "p.nii.gz"
    bad.write_bytes(content)
    with pytest.raises(CardioInputError, match=problem):
        read_heart(bad)


def test_bad_choices_are_clear_errors(tmp_path):
    with pytest.raises(CardioInputError, match="not found"):
        read_heart(tmp_path / "nothing.nii.gz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CardioInputError, match="not a NIfTI"):
        read_heart(tmp_path / "notes.txt")
    for name in ("a_gt", "b_gt", "c_gt"):
        write_label_volume(_labels(5.0), tmp_path / f"{name}.nii.gz")
    with pytest.raises(CardioInputError, match="cohort"):
        read_heart(tmp_path)
    with pytest.raises(CardioInputError, match="3 items"):
        read_heart([tmp_path / f"{n}.nii.gz" for n in ("a_gt", "b_gt", "c_gt")])


def test_an_ed_only_heart_gets_es_codes_and_its_morph_goes_back_to_its_own_grid(tmp_path):
    import torch
    from tiny_models import TINY, build_label_vae, write_tiny_cohort

    from cardio_explorer.engine.io.acdc import read_acdc_subject
    from cardio_explorer.engine.label_vae.encoding import build_atlas
    from cardio_explorer.engine.label_vae.morph import PathologyMorph
    from cardio_explorer.engine.label_vae.user import encode_user_heart, join_atlas, to_own_grid
    from cardio_explorer.engine.preprocess import preprocess_subject

    torch.manual_seed(0)
    model = build_label_vae(TINY).eval()
    root = write_tiny_cohort(tmp_path / "cohort")
    atlas = build_atlas(
        model, [preprocess_subject(read_acdc_subject(p), size=32) for p in sorted(root.iterdir())]
    )
    # an oblique, finer grid than the atlas's, as a scanner writes it
    own = _labels(5.0, n=7)
    affine = own.affine.copy()
    affine[:3, :3] = np.diag([1.1, 1.1, 7.0])
    affine[:3, 3] = (-20.0, 30.0, 15.0)
    path = write_label_volume(LabelVolume(own.data, affine), tmp_path / "mine.nii.gz")
    heart = encode_user_heart(model, atlas, read_heart(path))
    assert heart.es_estimated
    assert set(heart.reference.codes) == {"ED", "ES"}
    nor = atlas.group_stats("NOR", "ES").mean - atlas.group_stats("NOR", "ED").mean
    np.testing.assert_allclose(
        heart.reference.codes["ES"] - heart.reference.codes["ED"], nor, atol=1e-9
    )
    morph = PathologyMorph(model, join_atlas(atlas, heart.reference))
    assert set(atlas.references) < set(morph.atlas.references)
    step = morph.morph(heart.reference.subject_id, "DCM", "ES", 0.5)
    back = to_own_grid(step.labels, heart.raw.labels[0])
    written = write_label_volume(back, tmp_path / "back.nii.gz")
    read = SimpleITK.ReadImage(str(written))
    original = SimpleITK.ReadImage(str(path))
    assert read.GetSize() == original.GetSize()
    np.testing.assert_allclose(read.GetOrigin(), original.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(read.GetSpacing(), original.GetSpacing(), atol=1e-4)
    # the preprocessed labels put back on the own grid are the original labels
    prepared = to_own_grid(heart.prepared.labels[0], heart.raw.labels[0])
    agree = np.mean(prepared.data == own.data)
    assert agree > 0.97


def test_a_real_heart_morphed_to_dcm_gains_lv_volume(realdata_dir):
    from cardio_explorer.engine.label_vae.morph import PathologyMorph
    from cardio_explorer.engine.label_vae.user import encode_user_heart, join_atlas, to_own_grid
    from cardio_explorer.resources import bundled_checkpoint

    path = bundled_checkpoint("label_vae")
    if not path.is_file():
        pytest.skip("no bundled label VAE")
    morph = PathologyMorph.from_checkpoint(path)
    heart = encode_user_heart(
        morph.model, morph.atlas, read_heart(realdata_dir / "H1N8S6_sa_ED_gt.nii.gz"), morph.device
    )
    assert not heart.es_estimated
    assert heart.raw.images
    # the frame already puts a scanner-oriented heart into ACDC's handedness: the pose search
    # finds nothing better than the frame's own pose
    assert not any("turned in-plane" in note for note in heart.notes)
    morph = PathologyMorph(morph.model, join_atlas(morph.atlas, heart.reference), morph.device)
    start, end = morph.phenotypes(heart.reference.subject_id, "DCM", [0.0, 1.0])
    assert 80.0 < start.lvedv_ml < 110.0  # the real heart's 95.5 mL, as the VAE sees it
    assert 80.0 < start.rvedv_ml < 120.0  # and its 101.4 mL RV
    assert end.lvedv_ml > 1.5 * start.lvedv_ml
    assert end.lvef < start.lvef
    # alpha 0 put back on the file's own grid overlaps the real labels
    step = morph.morph(heart.reference.subject_id, "DCM", "ED", 0.0)
    own = to_own_grid(morph.at_native_slices(step), heart.raw.labels[0]).data
    real = heart.raw.labels[0].data
    for value in (1, 2, 3):
        dice = (
            2
            * np.sum((own == value) & (real == value))
            / (np.sum(own == value) + np.sum(real == value))
        )
        assert dice > 0.7, (value, dice)


def test_a_posed_volume_keeps_every_voxel_where_it_was():
    from cardio_explorer.engine.label_vae.user import POSES, posed

    volume = _labels(5.0)
    index = np.argwhere(volume.data == 3)
    world = volume.index_to_world(index)
    for ornt in POSES:
        turned = posed(volume, ornt)
        assert turned.data.shape[0] == volume.data.shape[0]
        moved = turned.index_to_world(np.argwhere(turned.data == 3))
        np.testing.assert_allclose(np.sort(moved, axis=0), np.sort(world, axis=0), atol=1e-6)
    assert len({posed(volume, o).data.tobytes() for o in POSES}) == 8


def test_an_image_goes_back_to_the_own_grid_linearly():
    from cardio_explorer.engine.label_vae.user import to_own_grid

    fine = _labels(5.0)
    ramp = np.broadcast_to(np.arange(32, dtype=np.float32), (6, 32, 32)).copy()
    image = ImageVolume(ramp, fine.affine)
    # a grid twice as fine in-plane, over the same field of view
    affine = fine.affine.copy()
    affine[:3, :2] /= 2.0
    affine[:3, 3] -= 0.25 * fine.affine[:3, 0] + 0.25 * fine.affine[:3, 1]
    like = LabelVolume(np.zeros((6, 64, 64), np.uint8), affine)
    back = to_own_grid(image, like)
    assert isinstance(back, ImageVolume)
    np.testing.assert_allclose(back.affine, like.affine)
    np.testing.assert_allclose(back.data[2, 10, 21:41:2], ramp[2, 5, 10:20] + 0.25, atol=1e-5)
