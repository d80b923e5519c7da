"""Motion decoding: frames after the first are frame 0 warped by decoded displacements."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from cardio_explorer.engine.cheart.config import TINY
from cardio_explorer.engine.cheart.loss import cheart_loss
from cardio_explorer.engine.cheart.motion import (
    enclose_lv,
    labelled_box,
    move_first_frame,
    warp_labels,
)
from cardio_explorer.engine.cheart.network import CHeartNet, save_cheart
from cardio_explorer.engine.cheart.warm_start import warm_start
from cardio_explorer.engine.errors import CardioInputError


def _cube(grid: int = 16) -> torch.Tensor:
    """One-hot [1, 4, g, g, g]: background with an LV cube at 6:10."""
    probs = torch.zeros(1, 4, grid, grid, grid)
    probs[:, 0] = 1
    probs[0, 0, 6:10, 6:10, 6:10] = 0
    probs[0, 1, 6:10, 6:10, 6:10] = 1
    return probs


def test_zero_displacement_is_the_identity():
    source = _cube()
    assert torch.equal(warp_labels(source, torch.zeros(1, 3, 16, 16, 16)), source)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_one_voxel_displacement_shifts_by_one_voxel(axis):
    source = _cube()
    displacement = torch.zeros(1, 3, 16, 16, 16)
    displacement[:, axis] = 1.0
    moved = warp_labels(source, displacement)
    # Voxel x reads x + 1: the cube appears one voxel earlier along the axis.
    expected = torch.roll(source, shifts=-1, dims=2 + axis)
    assert torch.allclose(moved[0, 1], expected[0, 1], atol=1e-6)


def test_labelled_box_grows_by_the_margin_and_clips():
    box = labelled_box(_cube()[0], margin=4)
    assert box == (slice(2, 14), slice(2, 14), slice(2, 14))
    assert labelled_box(_cube()[0], margin=8) == (slice(0, 16),) * 3
    empty = torch.zeros(4, 16, 16, 16)
    empty[0] = 1
    assert labelled_box(empty) is None


def test_moved_frames_are_probabilities_and_background_outside_the_box():
    first = _cube()
    displacement = torch.zeros(1, 3, 3, 16, 16, 16)
    displacement[0, 1, 2] = 1.5
    displacement[0, 2] = 20.0  # far beyond the box: still only the box's own labels
    moved = move_first_frame(first, displacement).probabilities()
    assert moved.shape == (1, 3, 4, 16, 16, 16)
    assert torch.allclose(moved.sum(dim=2), torch.ones(1, 3, 16, 16, 16))
    assert torch.equal(moved[0, 0], first[0])
    assert moved[0, 1, 1].sum() == pytest.approx(first[0, 1].sum().item(), rel=0.2)
    # Nothing labelled outside the box of frame 0 (6:10 grown by 4).
    assert moved[0, :, 1:, :2].sum() == 0
    assert moved[0, :, 1:, 14:].sum() == 0


def _motion_net_and_box_hearts(batch: int, outer: slice, inner: slice):
    """A seeded tiny motion CHeart and ``batch`` still sequences of a box heart: myocardium on
    ``outer`` and LV on ``inner`` along every axis, integer labels [B, T, D, H, W]."""
    config = TINY.with_changes(motion=True)
    torch.manual_seed(0)
    net = CHeartNet(config)
    labels = torch.zeros(batch, config.n_frames, *config.grid, dtype=torch.long)
    labels[:, :, outer, outer, outer] = 2
    labels[:, :, inner, inner, inner] = 1
    return config, net, labels


def test_completion_keeps_the_given_ed_frame_and_loss_trains_the_displacements():
    config, net, labels = _motion_net_and_box_hearts(2, slice(5, 11), slice(6, 10))
    conditions = torch.zeros(2, 5)
    out = net(labels[:, 0], conditions)
    assert torch.equal(out.labels()[:, 0], labels[:, 0].to(torch.uint8))
    terms = cheart_loss(out, labels, beta=1e-3, motion_smoothness=0.01)
    terms.total.backward()
    assert net.decoder.displacement.weight.grad.abs().sum() > 0
    generated = net.eval().generate(torch.zeros(1, config.z_dim), conditions[:1])
    assert generated.labels().shape == (1, config.n_frames, *config.grid)
    # generation moves the decoded frame 0, its LV blood pool closed by myocardium
    decoded = enclose_lv(generated.frame0_logits.argmax(dim=1)).byte()
    assert torch.equal(generated.labels()[:, 0], decoded)


def test_warm_start_adds_a_zero_displacement_layer(tmp_path):
    torch.manual_seed(1)
    labels_only = CHeartNet(TINY)
    path = save_cheart(tmp_path / "labels.safetensors", labels_only)
    motion = CHeartNet(TINY.with_changes(motion=True))
    zeroed = warm_start(motion, path)
    assert zeroed == ["decoder.displacement.weight", "decoder.displacement.bias"]
    last = motion.decoder.blocks[-1]
    assert torch.equal(last.weight, labels_only.decoder.blocks[-1].weight)
    assert motion.decoder.displacement.weight.abs().sum() == 0
    assert torch.equal(motion.encoder.mu.weight, labels_only.encoder.mu.weight)
    other = CHeartNet(TINY.with_changes(z_dim=4))
    with pytest.raises(CardioInputError, match="does not fit"):
        warm_start(other, path)


def _moved_hearts() -> tuple[object, torch.Tensor]:
    """Two hearts (one empty) moved by random displacements, and random targets that also label
    voxels outside the first heart's box."""
    torch.manual_seed(3)
    first = torch.cat([_cube(), torch.zeros(1, 4, 16, 16, 16)])
    first[1, 0] = 1.0
    displacement = torch.randn(2, 3, 3, 16, 16, 16)
    target = torch.randint(0, 4, (2, 3, 16, 16, 16))
    return move_first_frame(first, displacement), target


def test_box_nll_equals_the_full_grid_nll():
    moved, target = _moved_hearts()
    probabilities = moved.probabilities()
    full = functional.nll_loss(
        probabilities.flatten(0, 1).clamp_min(1e-6).log(), target.flatten(0, 1)
    )
    torch.testing.assert_close(moved.nll(target), full)


def test_box_labels_equal_the_full_grid_argmax():
    moved, _target = _moved_hearts()
    labels = moved.labels()
    assert labels.dtype == torch.uint8
    # the box argmax is the full-grid argmax, with the LV closed (enclose_lv) in both
    assert torch.equal(labels, enclose_lv(moved.probabilities().argmax(dim=2).byte()))
    assert labels[1].sum() == 0  # the empty heart stays background


def test_a_new_motion_network_starts_still_and_learns_to_move():
    config = TINY.with_changes(motion=True)
    torch.manual_seed(0)
    net = CHeartNet(config)
    assert net.decoder.displacement.weight.abs().sum() == 0
    labels = torch.zeros(2, config.n_frames, *config.grid, dtype=torch.long)
    labels[:, :, 5:11, 5:11, 5:11] = 2
    labels[:, :, 6:10, 6:10, 6:10] = 1
    labels[:, 1:] = torch.roll(labels[:, 1:], shifts=1, dims=3)  # later frames one voxel on
    conditions = torch.zeros(2, 5)
    still = net(labels[:, 0], conditions, sample=False)
    assert torch.equal(still.labels()[:, 1], labels[:, 0].byte())  # frame 0 copied
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    later = labels[:, 1:]
    moved = [still.moved.nll(later).item()]
    for _ in range(15):
        terms = cheart_loss(net(labels[:, 0], conditions, sample=False), labels, beta=0.0)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
    out = net(labels[:, 0], conditions, sample=False)
    moved.append(out.moved.nll(later).item())
    assert moved[1] < 0.9 * moved[0]  # the displacements, not only frame 0, learned
    assert net.decoder.displacement.weight.abs().sum() > 0


def _full_grid_dice(probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice [B, T, C - 1] from full-grid probabilities [B, T, C, ...] (the reference)."""
    truth = functional.one_hot(target.long(), probabilities.shape[2]).permute(0, 1, 5, 2, 3, 4)
    overlap = (probabilities * truth).sum(dim=(3, 4, 5))[:, :, 1:]
    total = (probabilities + truth).sum(dim=(3, 4, 5))[:, :, 1:]
    return (2 * overlap + 1) / (total + 1)


def test_soft_dice_from_the_boxes_matches_the_full_grid():
    first = torch.cat([_cube(), torch.roll(_cube(), 3, dims=2)])
    displacement = torch.randn(2, 3, 3, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    moved = move_first_frame(first, displacement)
    target = torch.zeros(2, 3, 16, 16, 16, dtype=torch.long)
    target[:, :, 7:11, 6:10, 5:9] = 1
    target[:, 1, 0:2, 0:2, 0:2] = 3  # a label far outside both boxes counts as missed
    dice = moved.soft_dice(target)
    assert dice.shape == (2, 3, 3)
    assert torch.allclose(dice, _full_grid_dice(moved.probabilities(), target), atol=1e-5)
    # no motion onto its own labels: perfect LV, and absent labels count as 1, not 0 / 0
    still = move_first_frame(first[:1], torch.zeros(1, 2, 3, 16, 16, 16))
    own = first[:1].argmax(dim=1)[:, None].expand(1, 2, 16, 16, 16)
    assert torch.allclose(still.soft_dice(own), torch.ones(1, 2, 3))


def test_dice_term_adds_one_minus_the_soft_dice_and_trains_the_displacements():
    _config, net, labels = _motion_net_and_box_hearts(1, slice(4, 12), slice(5, 11))
    labels[:, 1:, 5:11, 5:11, 5:11] = 2  # the later frames: the cavity shrunk ...
    labels[:, 1:, 7:9, 7:9, 7:9] = 1  # ... to its centre
    out = net(labels[:, 0], torch.zeros(1, 5), sample=False)
    plain = cheart_loss(out, labels, beta=0.0)
    with_dice = cheart_loss(out, labels, beta=0.0, motion_dice=1.0)
    assert with_dice.cross_entropy.item() == plain.cross_entropy.item()
    dice = out.moved.soft_dice(labels[:, 1:])
    gap = (with_dice.total - plain.total).item()
    assert gap == pytest.approx(1 - dice.mean().item(), rel=1e-5)
    with_dice.total.backward()
    assert net.decoder.displacement.weight.grad.abs().sum() > 0
