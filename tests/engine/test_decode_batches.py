"""CPU decoding in batches sized by the network: the same labels as one call for all slices."""

from __future__ import annotations

import numpy as np
import torch

from cardio_explorer.engine.device import precision_scope
from cardio_explorer.engine.label_vae import morph
from cardio_explorer.engine.label_vae.network import build_label_vae


def test_wide_full_size_decoders_decode_in_smaller_batches():
    # The paper network's 64 channels at 128 x 128: 4 MB per slice in fp32, 8 slices per call.
    assert morph._cpu_batch(build_label_vae("paper")) == 8
    assert morph._cpu_batch(build_label_vae("lean")) == morph._CPU_BATCH


def test_batched_decode_equals_one_call(one_torch_thread):
    torch.manual_seed(0)
    model = build_label_vae("paper").eval()
    with torch.no_grad():  # at initialisation every slice decodes to one label; vary them
        model.head[-1].weight.normal_(0.0, 1.0)
        for p in model.decoder_fc.parameters():
            p.normal_(0.0, 0.5)
    codes = np.random.default_rng(0).standard_normal((9, model.config.nz)).astype(np.float32)
    with precision_scope("fp32"):
        decoded = morph.decode_codes(model, codes)  # 8 + 1 slices
    expected = model.decode_labels(torch.from_numpy(codes)).numpy()
    assert decoded.shape == (9, 128, 128)
    assert (decoded[0] != decoded[8]).mean() > 0.1
    assert np.array_equal(decoded, expected)
