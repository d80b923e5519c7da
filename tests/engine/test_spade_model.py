"""SPADE networks: shape contracts (paper and lean), CPU forward, inference folding, round trip."""

from __future__ import annotations

import json

import pytest
import torch
from spade_phantom import TINY, tiny_config

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import save_checkpoint
from cardio_explorer.engine.nn.onehot import one_hot
from cardio_explorer.engine.spade.config import (
    LEAN,
    PAPER,
    SpadeConfig,
    resolve_config,
    with_image_size,
)
from cardio_explorer.engine.spade.network import (
    SpadeModel,
    SpadeNorm,
    count_parameters,
    load_spade,
    model_tensors,
    prepare_for_inference,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Running statistics as after training, so eval-mode folding has something to fold."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.3)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)


def _batch(config: SpadeConfig, n: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(
        0, config.n_labels, (n, config.image_size, config.image_size), generator=gen
    )
    z = torch.randn(n, config.z_dim, generator=gen)
    return labels, z


def test_paper_config_matches_the_reference_and_has_plausible_size():
    model = SpadeModel(PAPER)
    g, e, d = (count_parameters(m) for m in (model.generator, model.encoder, model.discriminator))
    # ngf 32 generator (512 -> 32 over 4 upsamplings, SPADE hidden 128): tens of millions
    assert 20e6 < g < 45e6
    # conv7x7 + 4 stride-2 convs to 512 x 8 x 8, 2 ResNet blocks, FC 32768 -> 256 (mu, logvar)
    assert model.encoder.fc_mu.in_features == 512 * 8 * 8
    assert 20e6 < e < 35e6
    # 2 scales x (4 conv layers + logit conv), ndf 64 -> 512, on label + image (5 channels)
    assert len(model.discriminator.scales) == 2
    first = model.discriminator.scales[0].layers[0][0]
    assert first.in_channels == PAPER.n_labels + 1
    assert first.out_channels == 64
    assert 3e6 < d < 8e6
    assert PAPER.init_size == 8
    assert PAPER.up_channels == (256, 128, 64, 32)
    assert PAPER.spade_hidden == 128
    assert PAPER.spectral


@pytest.mark.parametrize("config", [with_image_size(PAPER, 32), TINY], ids=["paper@32", "tiny"])
def test_forward_shapes_on_cpu(config):
    torch.manual_seed(0)
    model = SpadeModel(config)
    labels, _ = _batch(config, 2)
    images = torch.rand(2, 1, config.image_size, config.image_size) * 2 - 1
    code = model.encode(images)
    assert code.mu.shape == code.logvar.shape == (2, config.z_dim)
    fake = model.generator(one_hot(labels, config.n_labels), code.mu)
    assert fake.shape == (2, 1, config.image_size, config.image_size)
    assert fake.abs().max() <= 1.0
    outs = model.discriminator(one_hot(labels, config.n_labels), fake)
    assert len(outs) == config.d_scales
    assert all(len(scale) == config.d_layers + 1 and scale[-1].shape[1] == 1 for scale in outs)


def test_lean_synthesises_a_full_size_slice_on_cpu():
    # the MONAI gotcha (random z built on seg.get_device()) would fail right here on CPU
    torch.manual_seed(0)
    model = prepare_for_inference(SpadeModel(LEAN))
    labels, z = _batch(LEAN, 1)
    with torch.inference_mode():
        image = model.synthesise(labels, z)
    assert image.shape == (1, 128, 128)
    assert torch.isfinite(image).all()
    assert LEAN.out_shuffle == 2
    assert LEAN.init_size == 8


def test_inference_preparation_keeps_the_eval_output():
    torch.manual_seed(0)
    model = SpadeModel(TINY)
    _randomise_batchnorm(model)
    labels, z = _batch(TINY)
    model.eval()
    with torch.no_grad():
        before = model.synthesise(labels, z)
    fast = prepare_for_inference(model)
    assert all(m.folded for m in fast.modules() if isinstance(m, SpadeNorm))
    assert not any("parametrizations" in k for k in fast.state_dict())
    with torch.inference_mode():
        after = fast.synthesise(labels, z)
    torch.testing.assert_close(after, before, atol=2e-5, rtol=1e-4)


def test_checkpoint_round_trip_gives_identical_images(tmp_path):
    torch.manual_seed(1)
    model = SpadeModel(TINY)
    _randomise_batchnorm(model, 1)
    path = save_checkpoint(
        tmp_path / "spade.safetensors", "spade", TINY.to_json(), model_tensors(model)
    )
    labels, z = _batch(TINY)
    reference = prepare_for_inference(model)
    loaded = load_spade(path)
    assert loaded.config == TINY
    assert loaded.discriminator is None
    with torch.inference_mode():
        assert torch.equal(loaded.synthesise(labels, z), reference.synthesise(labels, z))
    trainable = load_spade(path, inference=False)
    assert trainable.discriminator is not None
    assert trainable.training


def test_load_rejects_a_checkpoint_that_does_not_fit(tmp_path):
    model = SpadeModel(TINY)
    wrong = tiny_config(z_dim=4)
    path = save_checkpoint(
        tmp_path / "x.safetensors", "spade", wrong.to_json(), model_tensors(model)
    )
    with pytest.raises(CardioInputError, match="does not fit"):
        load_spade(path)


def test_resolve_config_names_files_and_overrides(tmp_path):
    assert resolve_config("lean") is LEAN
    assert resolve_config("PAPER") is PAPER
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"base": "paper", "image_size": 64, "z_dim": 32}))
    config = resolve_config(path)
    assert config.image_size == 64
    assert config.z_dim == 32
    assert config.up_channels == PAPER.up_channels
    assert SpadeConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    path.write_text(json.dumps({"ngf": 3}))
    with pytest.raises(CardioInputError, match="unknown keys"):
        resolve_config(path)
    with pytest.raises(CardioInputError, match="neither"):
        resolve_config("nonsense")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_size": 40}, "multiple of 16"),
        ({"out_shuffle": 3}, "out_shuffle"),
        ({"spade_kernel": 5}, "spade_kernel"),
    ],
)
def test_config_validation(changes, message):
    with pytest.raises(CardioInputError, match=message):
        tiny_config(**changes)
