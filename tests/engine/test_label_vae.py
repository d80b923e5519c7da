"""The 2D label VAE network: configs, shape contracts, loss, inference copy, checkpoints."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.config import LEAN, PAPER, LabelVaeConfig
from cardio_explorer.engine.label_vae.network import (
    LabelVAE,
    VaeOutput,
    build_label_vae,
    load_label_vae,
    save_label_vae,
)
from cardio_explorer.engine.nn.checkpoint import save_checkpoint
from cardio_explorer.engine.nn.onehot import one_hot

TINY = LabelVaeConfig(
    name="tiny",
    nz=4,
    size=32,
    encoder_channels=(4, 8),
    encoder_convs_per_block=2,
    encoder_fc=(32,),
    decoder_fc=(32,),
    decoder_channels=(8, 8, 4),
    head_channels=4,
    output_stride=1,
)


def _random_labels(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, (batch, size, size), generator=generator, dtype=torch.uint8)


def _with_random_batchnorm(model: LabelVAE, seed: int = 0) -> LabelVAE:
    """Running statistics away from (0, 1) so eval mode and folding are really exercised."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
    return model.eval()


def test_paper_preset_matches_the_published_network():
    model = LabelVAE(PAPER)
    assert model.n_parameters() == pytest.approx(29.5e6, rel=0.02)
    assert (PAPER.nz, PAPER.beta, PAPER.size, PAPER.n_classes) == (16, 15.0, 128, 4)
    assert PAPER.grid == 8
    assert model.encoder_fc[0].in_features == 512 * 8 * 8
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 12
    assert [c.stride[0] for c in convs[:3]] == [2, 1, 1]
    assert not any(isinstance(m, torch.nn.LeakyReLU) for m in model.encoder_fc)


def test_paper_forward_shapes():
    model = build_label_vae("paper").eval()
    with torch.inference_mode():
        out = model(one_hot(_random_labels(1, 128)))
    assert out.logits.shape == (1, 4, 128, 128)
    assert out.mu.shape == out.logvar.shape == (1, 16)


def test_lean_shape_contract():
    model = build_label_vae(LEAN).eval()
    assert LEAN.nz == 16
    assert LEAN.size == 128
    assert model.n_parameters() < 4e6  # fits the 20 MB bundled-model budget in float32
    with torch.inference_mode():
        out = model(one_hot(_random_labels(2, 128)))
    assert isinstance(out, VaeOutput)
    assert out.logits.shape == (2, 4, 128, 128)
    assert out.mu.shape == (2, 16)
    labels = model.decode_labels(torch.zeros(3, 16))
    assert labels.shape == (3, 128, 128)
    assert labels.dtype == torch.uint8
    assert int(labels.max()) <= 3


@pytest.mark.parametrize("upsample", ["bilinear", "nearest", "transposed"])
@pytest.mark.parametrize(("convs", "stride"), [(1, 1), (2, 1), (1, 2), (2, 4)])
def test_decoder_variants_keep_the_contract(upsample, convs, stride):
    channels = {1: (8, 8, 4), 2: (8, 4), 4: (8,)}[stride]
    config = dataclasses.replace(
        TINY,
        upsample=upsample,
        decoder_convs_per_block=convs,
        output_stride=stride,
        decoder_channels=channels,
    )
    model = build_label_vae(config)
    out = model(one_hot(_random_labels(2, 32)))
    assert out.logits.shape == (2, 4, 32, 32)
    assert out.mu.shape == (2, 4)
    model.loss(out, _random_labels(2, 32)).total.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_config_json_round_trip_and_unknown_keys():
    for config in (LEAN, PAPER, TINY):
        data = json.loads(json.dumps(config.to_dict()))
        assert LabelVaeConfig.from_dict(data) == config
    with pytest.raises(CardioInputError, match=r"unknown label VAE config keys.*'n_z'"):
        LabelVaeConfig.from_dict({**LEAN.to_dict(), "n_z": 8}, source="my.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": 100}, "not divisible"),
        ({"decoder_channels": [64, 32]}, "decoder_channels needs 4"),
        ({"upsample": "cubic"}, "upsample must be one of"),
        ({"output_stride": 3}, "output_stride must be a power of 2"),
        ({"output_stride": 32}, "output_stride must be a power of 2 up to 2\\*\\*4"),
        ({"nz": 0}, "nz must be >= 1"),
        ({"nz": "sixteen"}, "invalid label VAE config"),
    ],
)
def test_config_rejects_bad_values(change, message):
    with pytest.raises(CardioInputError, match=message) as info:
        LabelVaeConfig.from_dict({**LEAN.to_dict(), **change}, source="cfg.json")
    assert str(info.value).startswith("cfg.json: ")


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(CardioInputError, match="unknown preset 'huge'"):
        build_label_vae("huge")


def test_wrong_input_shapes_are_clear_errors():
    model = build_label_vae(TINY)
    with pytest.raises(CardioInputError, match=r"one-hot \[B, 4, 32, 32\]"):
        model.encode(torch.zeros(1, 4, 64, 64))
    with pytest.raises(CardioInputError, match=r"expected shape \[B, 4\]"):
        model.decode(torch.zeros(2, 16))


def test_loss_is_summed_cross_entropy_per_slice_plus_beta_kl():
    model = build_label_vae(TINY)
    target = _random_labels(3, 32)
    logits = torch.randn(3, 4, 32, 32)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.1
    terms = model.loss(VaeOutput(logits, mu, logvar), target, beta=2.0)
    log_p = torch.log_softmax(logits, dim=1).gather(1, target.long()[:, None])
    assert terms.ce.item() == pytest.approx(-log_p.sum().item() / 3, rel=1e-5)
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum() / 3
    assert terms.kl.item() == pytest.approx(kl.item(), rel=1e-5)
    assert terms.total.item() == pytest.approx(terms.ce.item() + 2.0 * kl.item(), rel=1e-5)
    zero = model.loss(VaeOutput(logits, torch.zeros(3, 4), torch.zeros(3, 4)), target)
    assert zero.kl.item() == 0.0
    assert zero.total.item() == pytest.approx(zero.ce.item())


def test_forward_samples_in_training_and_uses_mu_in_eval():
    model = build_label_vae(TINY)
    x = one_hot(_random_labels(2, 32))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).logits, model(x).logits)
        assert torch.equal(model(x).logits, model.decode(model.encode(x)[0]))
    model.train()
    torch.manual_seed(0)
    first = model(x).logits
    assert not torch.equal(first, model(x).logits)


def test_inference_copy_folds_batchnorm_and_matches_eval():
    model = _with_random_batchnorm(build_label_vae(TINY))
    fast = model.for_inference()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # original intact
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        torch.testing.assert_close(fast.decode(z), model.decode(z), atol=1e-4, rtol=1e-4)
        x = one_hot(_random_labels(4, 32))
        torch.testing.assert_close(fast.encode(x)[0], model.encode(x)[0], atol=1e-4, rtol=1e-4)
    agree = (fast.decode_labels(z) == model.decode_labels(z)).float().mean()
    assert agree > 0.99


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    model = _with_random_batchnorm(build_label_vae(TINY), seed=5)
    path = save_label_vae(tmp_path / "vae.safetensors", model, extra={"note": "hi"})
    loaded, checkpoint = load_label_vae(path)
    assert loaded.config == TINY
    assert not loaded.training
    assert checkpoint.kind == "label_vae"
    assert checkpoint.extra == {"note": "hi"}
    x = one_hot(_random_labels(3, 32, seed=9))
    with torch.inference_mode():
        assert torch.equal(loaded(x).logits, model(x).logits)
        assert torch.equal(loaded.encode(x)[1], model.encode(x)[1])
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_save_rejects_a_config_that_does_not_describe_the_model(tmp_path):
    with pytest.raises(ValueError, match="does not describe"):
        save_label_vae(tmp_path / "x.safetensors", build_label_vae(TINY), config=LEAN)


def test_loading_another_kind_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "spade.safetensors", "spade", {}, {"w": torch.zeros(2)})
    with pytest.raises(CardioInputError, match="is a spade checkpoint, but a label_vae"):
        load_label_vae(path)


def test_loading_mismatched_shapes_is_a_clear_error(tmp_path):
    model = build_label_vae(TINY)
    weights = {"model." + k: v for k, v in model.state_dict().items()}
    other = dataclasses.replace(TINY, nz=6)
    path = save_checkpoint(tmp_path / "bad.safetensors", "label_vae", other.to_dict(), weights)
    with pytest.raises(CardioInputError, match="shape mismatches"):
        load_label_vae(path)


def test_loading_a_config_with_unknown_keys_names_the_file(tmp_path):
    model = build_label_vae(TINY)
    weights = {"model." + k: v for k, v in model.state_dict().items()}
    config = {**TINY.to_dict(), "dropout": 0.1}
    path = save_checkpoint(tmp_path / "odd.safetensors", "label_vae", config, weights)
    with pytest.raises(CardioInputError, match=r"odd\.safetensors: unknown label VAE config"):
        load_label_vae(path)
