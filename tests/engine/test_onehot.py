"""The one one-hot encoding shared by the label VAE, SPADE, CHeart and the segmenter."""

import numpy as np
import torch

from cardio_explorer.engine.nn.onehot import N_LABELS, one_hot


def test_one_hot_2d_round_trips_and_is_channels_last():
    labels = torch.tensor(np.array([[[0, 1], [2, 3]]], dtype=np.uint8))
    out = one_hot(labels)
    assert out.shape == (1, N_LABELS, 2, 2)
    assert out.dtype == torch.float32
    assert torch.equal(out.argmax(1), labels.long())
    assert torch.equal(out.sum(1), torch.ones(1, 2, 2))
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_one_hot_3d_volumes_and_other_class_counts():
    labels = torch.randint(0, 3, (2, 3, 4, 5), generator=torch.Generator().manual_seed(0))
    out = one_hot(labels, 3)
    assert out.shape == (2, 3, 3, 4, 5)
    assert torch.equal(out.argmax(1), labels)
    assert out.is_contiguous(memory_format=torch.channels_last_3d)
