"""Fidelity check: a perfect generator passes, a blind one fails, intensities are measured right."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from spade_phantom import INTENSITY, TINY, phantom_subjects

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.spade.fidelity import FidelitySettings, evaluate_fidelity
from cardio_explorer.engine.spade.network import StyleCode
from cardio_explorer.engine.spade.segmenter import SegmenterSettings, TinyUNet

CPU = torch.device("cpu")
QUICK = SegmenterSettings(steps=72, batch_size=4, lr=3e-3, base=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class LookupGenerator(torch.nn.Module):
    """Stands in for SPADE: paints each tissue with a fixed intensity (or one for all)."""

    def __init__(self, intensities: np.ndarray) -> None:
        super().__init__()
        self.config = TINY
        self.table = torch.nn.Parameter(torch.as_tensor(intensities), requires_grad=False)

    def encode(self, image: torch.Tensor) -> StyleCode:
        zeros = torch.zeros(len(image), TINY.z_dim)
        return StyleCode(zeros, zeros)

    def synthesise(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.table[labels.long()]


@pytest.fixture(scope="module")
def subjects():
    return phantom_subjects(8, seed=11)


def test_a_perfect_generator_meets_every_target(subjects):
    report = evaluate_fidelity(
        LookupGenerator(INTENSITY),
        subjects[:6],
        subjects[6:],
        FidelitySettings(segmenter=QUICK),
        CPU,
    )
    assert report.real_image_dice["mean"] > 0.9
    assert report.label_fidelity_dice["mean"] > 0.9
    assert abs(report.label_fidelity_dice["mean"] - report.real_image_dice["mean"]) < 0.05
    assert report.passed
    assert set(report.label_fidelity_dice) == {"lv", "myo", "rv", "mean"}
    assert report.counts["test_volumes"] == 4
    assert report.counts["segmenter_slices"] == 6 * 2 * 4
    # intensities on the (x + 1) / 2 scale; real ones carry noise and a ramp, means match
    for value, tissue in zip(INTENSITY, ("background", "lv", "myo", "rv"), strict=True):
        stats = report.intensity[tissue]
        assert stats["synthetic"]["mean"] == pytest.approx((value + 1) / 2, abs=1e-5)
        assert stats["synthetic"]["std"] == pytest.approx(0.0, abs=1e-3)
        assert stats["real"]["mean"] == pytest.approx((value + 1) / 2, abs=0.03)
        assert stats["real"]["std"] > 0.01
    json_body = report.to_json()
    assert json_body["targets"]["label_fidelity_mean_dice"]["pass"] is True


def test_a_generator_blind_to_labels_fails(subjects):
    flat = np.full(4, INTENSITY.mean(), dtype=np.float32)
    report = evaluate_fidelity(
        LookupGenerator(flat),
        subjects[:6],
        subjects[6:],
        FidelitySettings(style="random", segmenter=QUICK),
        CPU,
    )
    assert report.label_fidelity_dice["mean"] < 0.5
    assert not report.passed
    assert not report.targets["label_fidelity_mean_dice"]["pass"]
    assert not report.targets["intensity_mean_lv"]["pass"]


def test_inputs_are_checked(subjects):
    with pytest.raises(CardioInputError, match="no held-out subjects"):
        evaluate_fidelity(LookupGenerator(INTENSITY), subjects, [], FidelitySettings(), CPU)
    with pytest.raises(CardioInputError, match="--style"):
        FidelitySettings(style="mean")


def test_cosine_schedule_anneals_the_rate_and_unknown_schedules_are_refused(subjects):
    from cardio_explorer.engine.spade.data import collect_image_label_slices
    from cardio_explorer.engine.spade.segmenter import train_segmenter

    slices = collect_image_label_slices(subjects[:2])
    steps = dict(steps=8, batch_size=4, lr=3e-3, base=4)
    constant = train_segmenter(slices, SegmenterSettings(**steps), CPU)
    cosine = train_segmenter(slices, SegmenterSettings(**steps, lr_schedule="cosine"), CPU)
    assert constant.last_lr == pytest.approx(3e-3)
    # the last of 8 steps takes lr (1 + cos(7 pi / 8)) / 2, 4 % of the start
    assert cosine.last_lr == pytest.approx(3e-3 * (1 + math.cos(7 * math.pi / 8)) / 2)
    first = next(iter(constant.model.parameters()))
    assert not torch.equal(first, next(iter(cosine.model.parameters())))
    with pytest.raises(CardioInputError, match="'linear' is unknown"):
        SegmenterSettings(lr_schedule="linear")


def test_tiny_unet_shapes():
    logits = TinyUNet(4, base=4)(torch.zeros(2, 1, 32, 32))
    assert logits.shape == (2, 4, 32, 32)
