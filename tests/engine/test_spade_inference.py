"""synthesise_images: geometry, styles, determinism, locality of label edits, 4D, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from spade_phantom import TINY, phantom_image, phantom_labels

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.spade.inference import (
    StyleSpec,
    encode_style,
    style_codes,
    synthesise_images,
)
from cardio_explorer.engine.spade.network import SpadeModel, prepare_for_inference
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

SPACING = (8.0, 1.5, 1.5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return prepare_for_inference(SpadeModel(TINY))


@pytest.fixture
def labels():
    data = phantom_labels(np.random.default_rng(3))
    return LabelVolume.from_array(data, SPACING, origin_xyz=(5.0, -3.0, 2.0), name="case")


def test_output_keeps_the_geometry(model, labels):
    image = synthesise_images(model, labels, StyleSpec(seed=0))
    assert isinstance(image, ImageVolume)
    assert image.data.shape == labels.data.shape
    assert image.data.dtype == np.float32
    np.testing.assert_array_equal(image.affine, labels.affine)
    assert image.data.min() >= -1.0
    assert image.data.max() <= 1.0
    assert "case" in image.name


def test_same_style_and_labels_give_identical_images(model, labels):
    first = synthesise_images(model, labels, StyleSpec(seed=7))
    again = synthesise_images(model, labels, StyleSpec(seed=7), batch_size=1)
    np.testing.assert_allclose(again.data, first.data, atol=1e-5)
    np.testing.assert_array_equal(
        synthesise_images(model, labels, StyleSpec(seed=7)).data, first.data
    )
    other = synthesise_images(model, labels, StyleSpec(seed=8))
    assert np.abs(other.data - first.data).mean() > 1e-3


def test_fixed_style_changes_the_image_only_near_changed_labels(model, labels):
    edited = labels.data.copy()
    quadrant = np.zeros_like(edited, dtype=bool)
    quadrant[:, :16, :16] = True
    edited[(edited == 1) & quadrant] = 2  # thicker wall in one quadrant
    changed = edited != labels.data
    assert changed.any()
    a = synthesise_images(model, labels, StyleSpec(seed=1)).data
    b = synthesise_images(model, labels.with_data(edited), StyleSpec(seed=1)).data
    diff = np.abs(a - b)
    cross = np.ones((1, 3, 3), dtype=bool)
    near = ndimage.binary_dilation(changed, cross, iterations=2)
    far = ~ndimage.binary_dilation(changed, cross, iterations=8)  # 12 mm away and more
    assert diff[near].mean() > 5 * diff[far].mean()


def test_reference_style_is_deterministic_and_used(model, labels):
    rng = np.random.default_rng(0)
    reference = ImageVolume.from_array(phantom_image(labels.data, rng), SPACING)
    code = encode_style(model, reference)
    assert code.shape == (TINY.z_dim,)
    assert np.all(np.isfinite(code))
    from_ref = synthesise_images(model, labels, StyleSpec(reference=reference))
    from_code = synthesise_images(model, labels, code)
    np.testing.assert_array_equal(from_ref.data, from_code.data)


def test_per_slice_style_codes(model, labels):
    n = labels.data.shape[0]
    codes = np.random.default_rng(0).standard_normal((n, TINY.z_dim)).astype(np.float32)
    image = synthesise_images(model, labels, codes)
    single = synthesise_images(model, LabelVolume(labels.data[:1], labels.affine), codes[0])
    np.testing.assert_allclose(image.data[0], single.data[0], atol=1e-5)
    assert style_codes(model, torch.from_numpy(codes), n).shape == (n, TINY.z_dim)


def test_4d_sequence_frame_by_frame(model, labels):
    frames = np.stack([labels.data, np.roll(labels.data, 1, axis=-1), labels.data])
    seq = LabelVolume(frames, labels.affine, frame_duration_ms=40.0, name="cine")
    images = synthesise_images(model, seq, StyleSpec(seed=2), batch_size=5)
    assert images.is_4d
    assert images.data.shape == frames.shape
    assert images.frame_duration_ms == 40.0
    alone = synthesise_images(model, labels, StyleSpec(seed=2))
    np.testing.assert_allclose(images.data[0], alone.data, atol=1e-5)
    np.testing.assert_allclose(images.data[2], images.data[0], atol=1e-5)
    assert np.abs(images.data[1] - images.data[0]).max() > 1e-3


def test_wrong_in_plane_shape_is_a_clear_error(model):
    vol = LabelVolume.from_array(np.ones((2, 48, 40), dtype=np.uint8), SPACING, name="big")
    with pytest.raises(CardioInputError, match=r"big: in-plane shape 48 x 40 .* 32 x 32.*preproc"):
        synthesise_images(model, vol)


def test_empty_foreground_is_a_clear_error(model, labels):
    with pytest.raises(CardioInputError, match="no foreground"):
        synthesise_images(model, labels.with_data(np.zeros_like(labels.data)))
    seq = LabelVolume(np.stack([labels.data, np.zeros_like(labels.data)]), labels.affine)
    with pytest.raises(CardioInputError, match=r"frames \[1\] have no foreground"):
        synthesise_images(model, seq)


def test_unknown_label_value_is_rejected_before_synthesis():
    data = np.zeros((2, 32, 32), dtype=np.uint8)
    data[0, 10, 10] = 7
    with pytest.raises(CardioInputError, match=r"unknown label values \[7\]"):
        LabelVolume.from_array(data, SPACING)


@pytest.mark.parametrize(
    "style",
    [np.zeros(3, dtype=np.float32), np.zeros((2, TINY.z_dim)), np.full(TINY.z_dim, np.nan)],
    ids=["short", "wrong-slices", "nan"],
)
def test_bad_style_codes(model, labels, style):
    with pytest.raises(CardioInputError, match="style"):
        synthesise_images(model, labels, style)


def test_style_spec_needs_exactly_one_source():
    with pytest.raises(CardioInputError, match="exactly one"):
        StyleSpec()
    reference = ImageVolume.from_array(np.zeros((1, 32, 32)), SPACING)
    with pytest.raises(CardioInputError, match="exactly one"):
        StyleSpec(seed=1, reference=reference)


def test_reference_without_contrast_is_rejected(model):
    flat = ImageVolume.from_array(np.zeros((2, 32, 32)), SPACING, name="flat")
    with pytest.raises(CardioInputError, match="flat: has no contrast"):
        encode_style(model, flat)
