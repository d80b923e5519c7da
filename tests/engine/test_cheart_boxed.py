"""Generation's motion decoding inside each heart's box gives the full-grid path's frames."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cardio_explorer.engine.cheart.boxed import transposed_in_box
from cardio_explorer.engine.cheart.config import TINY
from cardio_explorer.engine.cheart.network import CHeartNet
from cardio_explorer.engine.device import precision_scope


@st.composite
def _boxes(draw):
    box = []
    for n in (12, 14, 16):
        start = draw(st.integers(0, n - 1))
        box.append(slice(start, draw(st.integers(start + 1, n))))
    return tuple(box)


@given(box=_boxes())
def test_transposed_convolution_in_a_box_equals_the_cropped_full_output(box):
    torch.manual_seed(0)
    layer = torch.nn.ConvTranspose3d(5, 3, 4, stride=2, padding=1).double()
    h = torch.randn(2, 5, 6, 7, 8, dtype=torch.float64)
    with torch.no_grad():
        expected = layer(h)[(slice(None), slice(None), *box)]
        got = transposed_in_box(layer, h, box)
    assert got.shape == expected.shape
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-6)


def test_other_layers_fall_back_to_the_layer_itself():
    layer = torch.nn.ConvTranspose3d(2, 3, 2, stride=2)
    h = torch.randn(1, 2, 3, 3, 3)
    box = (slice(1, 4), slice(0, 6), slice(2, 5))
    with torch.no_grad():
        expected = layer(h)[(slice(None), slice(None), *box)]
        torch.testing.assert_close(transposed_in_box(layer, h, box), expected)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_boxed_generation_moves_frames_as_the_full_grid_path(precision):
    config = TINY.with_changes(motion=True, motion_basis=2)
    torch.manual_seed(1)
    net = CHeartNet(config).eval()
    with torch.no_grad():  # heads that move something (they start at zero)
        net.decoder.displacement.weight.normal_(0.0, 0.2)
        net.motion_basis.anatomy[-1].weight.normal_(0.0, 0.2)
        for bn in (m for m in net.decoder.modules() if isinstance(m, torch.nn.BatchNorm3d)):
            bn.running_mean.normal_(0.0, 0.3)  # statistics that folding must carry over
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.normal_(1.0, 0.2)
            bn.bias.normal_(0.0, 0.2)
    source = torch.zeros(3, *config.grid, dtype=torch.long)
    source[:, 3:12, 4:11, 5:13] = 2
    source[:, 5:10, 6:9, 7:11] = 1
    source[1, 8:13, 2:6, 5:9] = 3
    source[2] = 0  # an empty frame 0: background everywhere
    z, c = torch.randn(3, config.z_dim), torch.randn(3, 5)
    with (
        precision_scope(precision),
        torch.inference_mode(),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"),
    ):
        full = net.generate(z, c, source=source, boxed=False)
        boxed = net.generate(z, c, source=source)
    assert boxed.displacement is None
    assert full.labels()[1:].any()
    if precision == "fp32":
        assert torch.equal(boxed.labels(), full.labels())
        torch.testing.assert_close(boxed.moved.probabilities(), full.moved.probabilities())
    else:  # BatchNorm folded before, not after, the bf16 rounding of the convolutions
        assert (boxed.labels() == full.labels()).float().mean() >= 0.999
        difference = boxed.moved.probabilities() - full.moved.probabilities()
        assert difference.abs().mean() < 1e-3
