"""CHeart network: shape contracts, the autoregressive LSTM, loss, save/load, a tiny overfit."""

from __future__ import annotations

import math

import pytest
import torch

from cardio_explorer.engine.cheart.config import LEAN, PAPER, TINY, CHeartConfig
from cardio_explorer.engine.cheart.loss import cheart_loss
from cardio_explorer.engine.cheart.network import (
    CHeartNet,
    load_cheart,
    parameter_count,
    save_cheart,
)
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import load_checkpoint, save_checkpoint
from cardio_explorer.engine.nn.onehot import one_hot


def _batch(config: CHeartConfig, b: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (b, config.n_frames, *config.grid), generator=g)
    conditions = torch.randn(b, 5, generator=g)
    return labels, conditions


def test_forward_shapes_and_first_latent_is_the_ed_code():
    torch.manual_seed(0)
    net = CHeartNet(TINY).eval()
    labels, cond = _batch(TINY, b=3)
    out = net(labels[:, 0], cond)
    d, h, w = TINY.grid
    assert out.logits.shape == (3, TINY.n_frames, 4, d, h, w)
    assert out.mu.shape == out.logvar.shape == (3, TINY.z_dim)
    assert out.latents.shape == (3, TINY.n_frames, TINY.z_dim)
    # Eval mode uses the posterior mean as the frame-0 latent.
    torch.testing.assert_close(out.latents[:, 0], out.mu)


def test_one_hot_input_equals_integer_input():
    torch.manual_seed(0)
    net = CHeartNet(TINY).eval()
    labels, cond = _batch(TINY)
    a = net(labels[:, 0], cond)
    b = net(one_hot(labels[:, 0], TINY.n_labels), cond)
    torch.testing.assert_close(a.logits, b.logits)


def test_lstm_step_takes_the_previous_latent_not_the_same_z():
    torch.manual_seed(0)
    net = CHeartNet(TINY).eval()
    temporal = net.temporal
    seen_inputs, outputs = [], []
    original = temporal.step

    def recording_step(previous, code, state):
        seen_inputs.append(previous.detach().clone())
        latent, new_state = original(previous, code, state)
        outputs.append(latent.detach().clone())
        return latent, new_state

    temporal.step = recording_step
    labels, cond = _batch(TINY)
    out = net(labels[:, 0], cond)
    assert len(seen_inputs) == TINY.n_frames - 1
    torch.testing.assert_close(seen_inputs[0], out.mu)
    for k in range(1, len(seen_inputs)):
        # A same-z LSTM would feed out.mu again here.
        torch.testing.assert_close(seen_inputs[k], outputs[k - 1])
        assert not torch.allclose(seen_inputs[k], out.mu)
    torch.testing.assert_close(torch.stack(outputs, dim=1), out.latents[:, 1:])


def test_sequence_depends_on_conditions():
    torch.manual_seed(0)
    net = CHeartNet(TINY).eval()
    z = torch.randn(1, TINY.z_dim)
    a = net.generate(z, torch.zeros(1, 5))
    b = net.generate(z, torch.ones(1, 5))
    torch.testing.assert_close(a.latents[:, 0], b.latents[:, 0])
    assert not torch.allclose(a.latents[:, -1], b.latents[:, -1])
    assert not torch.allclose(a.logits, b.logits)


def test_paper_config_matches_the_reference_shapes():
    net = CHeartNet(PAPER).eval()
    assert PAPER.grid == (64, 128, 128)
    assert PAPER.bottleneck_shape == (4, 8, 8)
    flat = PAPER.encoder_channels[-1] * math.prod(PAPER.bottleneck_shape)
    assert flat == 8192
    assert net.encoder.mu.in_features == flat + PAPER.condition_code
    assert net.encoder.mu.out_features == 32
    assert net.decoder.fc.out_features == 8192
    convs = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 32]
    assert all(c.kernel_size == (4, 4, 4) and c.stride == (2, 2, 2) for c in convs)
    deconvs = [m for m in net.decoder.modules() if isinstance(m, torch.nn.ConvTranspose3d)]
    assert [(d.in_channels, d.out_channels) for d in deconvs] == [(32, 16), (16, 8), (8, 4), (4, 4)]
    assert 1.0e6 < parameter_count(net) < 1.6e6
    # One decoded frame at full size (the shared decoder), cheap enough on a CPU.
    with torch.inference_mode():
        logits = net.decode(torch.zeros(1, 1, 32), torch.zeros(1, 5))
    assert logits.shape == (1, 1, 4, 64, 128, 128)


def test_lean_config_fits_the_bundled_size_limit():
    assert parameter_count(CHeartNet(LEAN)) * 4 < 20e6  # float32 bytes under 20 MB


def test_config_validation_and_round_trip():
    with pytest.raises(CardioInputError, match="multiple of 16"):
        CHeartConfig(grid=(30, 64, 64))
    with pytest.raises(CardioInputError, match="same number of levels"):
        CHeartConfig(decoder_channels=(8, 4))
    with pytest.raises(CardioInputError, match="unknown keys"):
        CHeartConfig.from_dict({**LEAN.to_dict(), "bogus": 1})
    assert CHeartConfig.from_dict(PAPER.to_dict()) == PAPER


def test_loss_is_cross_entropy_plus_beta_kl():
    torch.manual_seed(0)
    net = CHeartNet(TINY).train()
    labels, cond = _batch(TINY)
    out = net(labels[:, 0], cond)
    terms = cheart_loss(out, labels, beta=0.5)
    assert terms.cross_entropy > 0
    assert terms.kl >= 0
    torch.testing.assert_close(terms.total, terms.cross_entropy + 0.5 * terms.kl)
    zero = out._replace(mu=torch.zeros_like(out.mu), logvar=torch.zeros_like(out.logvar))
    assert cheart_loss(zero, labels, 1.0).kl.item() == pytest.approx(0.0, abs=1e-7)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    net = CHeartNet(TINY).eval()
    path = save_cheart(tmp_path / "m.safetensors", net, extra={"note": "x"})
    loaded, checkpoint = load_cheart(path)
    assert checkpoint.kind == "cheart"
    assert checkpoint.extra == {"note": "x"}
    assert loaded.config == TINY
    labels, cond = _batch(TINY)
    torch.testing.assert_close(net(labels[:, 0], cond).logits, loaded(labels[:, 0], cond).logits)
    assert load_checkpoint(path, "cheart").sha256 == checkpoint.sha256


def test_load_rejects_other_kinds_and_mismatched_weights(tmp_path):
    other = save_checkpoint(tmp_path / "vae.safetensors", "label_vae", {}, {"w": torch.ones(1)})
    with pytest.raises(CardioInputError, match="cheart checkpoint is needed"):
        load_cheart(other)
    net = CHeartNet(TINY)
    wrong = save_checkpoint(
        tmp_path / "wrong.safetensors",
        "cheart",
        TINY.to_dict(),
        {f"net.{k}": v for k, v in list(net.state_dict().items())[:-3]},
    )
    with pytest.raises(CardioInputError, match="missing weights"):
        load_cheart(wrong)


def test_tiny_overfit_reduces_the_loss():
    torch.manual_seed(0)
    config = TINY.with_changes(grid=(8, 8, 8), n_frames=4)
    net = CHeartNet(config).train()
    labels, cond = _batch(config, b=2)
    # A structured target (a blob) is learnable; random noise would not be.
    labels = torch.zeros_like(labels)
    labels[..., 2:6, 2:6, 2:6] = 2
    labels[..., 3:5, 3:5, 3:5] = 1
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        terms = cheart_loss(net(labels[:, 0], cond), labels, beta=1e-3)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
        losses.append(terms.total.item())
    assert losses[-1] < 0.5 * losses[0]
