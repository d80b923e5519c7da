"""The motion code: how far a heart contracts, an input of its motion, with a prior p(m | z0, c)."""

from __future__ import annotations

import pytest
import torch

from cardio_explorer.engine.cheart.calibration import calibrated_sequences, lv_ejection_fractions
from cardio_explorer.engine.cheart.config import TINY
from cardio_explorer.engine.cheart.loss import cheart_loss
from cardio_explorer.engine.cheart.motion_code import (
    LR_SCALE,
    N_DESCRIPTORS,
    ejection_fractions,
    gaussian_nll,
    motion_descriptors,
    parameter_groups,
)
from cardio_explorer.engine.cheart.network import CHeartNet, save_cheart
from cardio_explorer.engine.cheart.warm_start import warm_start
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.trainer import BetaVaeSchedule

MOTION = TINY.with_changes(motion=True, motion_basis=2)


def _box_sequences(contracting: list[bool]) -> torch.Tensor:
    """One sequence per flag, integer labels [B, T, D, H, W]: myocardium on 4:12 and LV on 5:11
    in frame 0; a contracting heart's later frames have the LV on 6:10 (myocardium around it),
    a still heart's stay as frame 0."""
    config = MOTION
    labels = torch.zeros(len(contracting), config.n_frames, *config.grid, dtype=torch.long)
    box, lv, small = slice(4, 12), slice(5, 11), slice(6, 10)
    labels[:, :, box, box, box] = 2
    labels[:, :, lv, lv, lv] = 1
    for i, moving in enumerate(contracting):
        if moving:
            labels[i, 1:, lv, lv, lv] = 2
            labels[i, 1:, small, small, small] = 1
    return labels


def test_descriptors_are_standardised_log_volume_ratios_and_map_back_to_ejection_fractions():
    labels = _box_sequences([True, False])
    code = motion_descriptors(labels)
    assert code.shape == (2, N_DESCRIPTORS)
    lv_ef = 100 * (1 - (4**3 + 1) / (6**3 + 1))  # LV 6^3 -> 4^3 voxels (+1 floor)
    assert ejection_fractions(code)[0, 0].item() == pytest.approx(lv_ef, rel=1e-4)
    assert ejection_fractions(code)[1].abs().max().item() == pytest.approx(0.0, abs=1e-4)
    assert ejection_fractions(code)[0, 1].item() == pytest.approx(0.0, abs=1e-4)  # no RV


def test_gaussian_nll_is_lowest_at_the_mean_and_punishes_overconfidence():
    value = torch.zeros(3, 2)
    at_mean = gaussian_nll(value, torch.zeros(3, 2), torch.zeros(3, 2)).item()
    off = gaussian_nll(value, torch.ones(3, 2), torch.zeros(3, 2)).item()
    overconfident = gaussian_nll(value, torch.ones(3, 2), torch.full((3, 2), -4.0)).item()
    assert at_mean < off < overconfident


def test_a_motion_code_needs_motion():
    with pytest.raises(CardioInputError, match="motion_code"):
        TINY.with_changes(motion_code=True)


def test_warm_start_adds_a_motion_code_that_changes_nothing_yet(tmp_path):
    torch.manual_seed(0)
    old = CHeartNet(MOTION).eval()
    path = save_cheart(tmp_path / "old.safetensors", old)
    new = CHeartNet(MOTION.with_changes(motion_code=True))
    assert warm_start(new, path) == []
    new.eval()
    labels = _box_sequences([True, False])
    conditions = torch.randn(2, 5)
    with torch.no_grad():
        before = old(labels[:, 0], conditions, sample=False)
        after = new(labels[:, 0], conditions, sample=False, sequence=labels)
        generated = new.generate(before.mu, conditions, motion_noise=torch.randn(2, N_DESCRIPTORS))
        generated_old = old.generate(before.mu, conditions)
    torch.testing.assert_close(after.latents, before.latents)
    assert torch.equal(after.labels(), before.labels())
    assert torch.equal(generated.labels(), generated_old.labels())


def _train(net: CHeartNet, labels: torch.Tensor, steps: int) -> None:
    conditions = torch.zeros(len(labels), 5)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        out = net(labels[:, 0], conditions, sample=False, sequence=labels)
        terms = cheart_loss(out, labels, beta=1e-3, motion_code_beta=1e-4)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()


def test_the_motion_code_moves_two_hearts_with_one_ed_frame_apart():
    """Two hearts share an ED frame but only one contracts: a deterministic motion must move
    both alike; the motion code, measured on each sequence, moves each its own way."""
    labels = _box_sequences([True, False])
    conditions = torch.zeros(2, 5)
    nll = {}
    for m_dim in (0, N_DESCRIPTORS):
        torch.manual_seed(0)
        net = CHeartNet(MOTION.with_changes(motion_code=bool(m_dim)))
        _train(net, labels, 100)
        net.eval()
        with torch.no_grad():
            out = net(labels[:, 0], conditions, sample=False, sequence=labels)
        nll[m_dim] = out.moved.nll(labels[:, 1:]).item()
        if m_dim:
            lv = (out.labels()[:, 1:] == 1).flatten(2).sum(dim=2).float().mean(dim=1)
            assert lv[0] < 0.8 * lv[1]  # the contracting heart's LV is the smaller one
            # without the sequence the prior decides: its mean and a draw are valid sequences
            with torch.no_grad():
                drawn = net.generate(out.mu, conditions, motion_noise=torch.randn(2, m_dim))
            assert drawn.labels().shape == labels.shape
    assert nll[2] < 0.8 * nll[0]


def test_the_motion_code_learns_faster_than_the_network_it_joins():
    net = CHeartNet(MOTION.with_changes(motion_code=True))
    groups = parameter_groups(net)
    assert [g["lr_scale"] for g in groups] == [1.0, LR_SCALE]
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(
        p.numel() for p in net.parameters()
    )
    optimizer = torch.optim.Adam(groups, lr=1e-3)
    schedule = BetaVaeSchedule(
        net, optimizer, lr=1e-3, beta=1e-3, warmup_epochs=0, epochs=4, decay_epochs=2
    )
    schedule.begin_epoch(3, 10)  # into the decay: every group's rate falls in proportion
    rates = [g["lr"] for g in optimizer.param_groups]
    assert rates[0] < 1e-3
    assert rates[1] == pytest.approx(rates[0] * LR_SCALE)
    assert len(parameter_groups(CHeartNet(MOTION))) == 1


def test_boxed_generation_applies_the_motion_code_like_the_full_grid():
    torch.manual_seed(2)
    net = CHeartNet(MOTION.with_changes(motion_code=True)).eval()
    with torch.no_grad():
        for layer in (net.motion_code.to_gain, net.motion_code.to_latents):
            layer.weight.normal_(0, 0.3)
        net.decoder.displacement.weight.normal_(0, 0.2)
        labels = _box_sequences([True, True])
        conditions, noise = torch.randn(2, 5), torch.randn(2, N_DESCRIPTORS)
        z0 = torch.randn(2, MOTION.z_dim)
        boxed = net.generate(z0, conditions, source=labels[:, 0], motion_noise=noise)
        full = net.generate(z0, conditions, source=labels[:, 0], motion_noise=noise, boxed=False)
        still = net.generate(z0, conditions, source=labels[:, 0], motion_noise=-noise)
    assert torch.equal(boxed.labels(), full.labels())
    # the draw of m matters
    assert not torch.allclose(boxed.moved.probabilities(), still.moved.probabilities())


def test_lv_ejection_fractions_of_labels():
    labels = _box_sequences([True, False])
    fractions = lv_ejection_fractions(labels)
    assert fractions[0].item() == pytest.approx(100 * (1 - 4**3 / 6**3))
    assert fractions[1].item() == 0.0


def test_calibrated_sequences_ejects_closer_to_what_the_code_says():
    torch.manual_seed(4)
    net = CHeartNet(MOTION.with_changes(motion_code=True)).eval()
    labels = _box_sequences([False, False])
    conditions, z0 = torch.randn(2, 5), torch.randn(2, MOTION.z_dim)
    with torch.no_grad():
        net.decoder.displacement.weight.normal_(0, 0.2)
        net.motion_code.prior[-1].bias[:N_DESCRIPTORS] = torch.tensor([1.36, 0.0])  # LVEF 20 %
        motion, _ = net.motion_of(z0, conditions)
        wanted = ejection_fractions(motion)[:, 0]
        plain = lv_ejection_fractions(net.generate(z0, conditions, source=labels[:, 0]).labels())
        calibrated, latents = calibrated_sequences(net, z0, conditions, labels[:, 0])
    assert torch.equal(calibrated[:, 0], labels[:, 0].byte())  # the given ED stays
    assert latents.shape == (2, MOTION.n_frames, MOTION.z_dim)
    error = (lv_ejection_fractions(calibrated) - wanted).abs()
    assert (error <= (plain - wanted).abs() + 1e-6).all()
    assert error.max() < 5.0
