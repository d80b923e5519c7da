"""PCA sequence-completion baseline."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.cheart.baseline import PCABaseline
from cardio_explorer.engine.cheart.data import build_sequences
from cardio_explorer.engine.cheart.toy import toy_subjects
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.metrics.overlap import dice_scores


@pytest.fixture(scope="module")
def sequences():
    subjects = toy_subjects(12, grid=(16, 16, 16), spacing_zyx=(8, 8, 8), n_frames=6, seed=4)
    return build_sequences(subjects, (16, 16, 16), (8, 8, 8), 6).labels


def test_full_components_reconstruct_training_sequences_exactly(sequences):
    baseline = PCABaseline().fit(sequences)
    assert baseline.n_components_ == len(sequences) - 1
    for seq in sequences:
        assert np.array_equal(baseline.complete(seq[0]), seq)


def test_random_labels_are_reconstructed_too():
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 4, size=(5, 3, 6, 6, 6)).astype(np.uint8)
    baseline = PCABaseline().fit(seq)
    assert all(np.array_equal(baseline.complete(s[0]), s) for s in seq)


def test_fewer_components_approximate_held_out_sequences(sequences):
    train, test = sequences[:10], sequences[10:]
    one = PCABaseline(n_components=1).fit(train)
    full = PCABaseline().fit(train)
    assert one.n_components_ == 1
    for seq in test:
        completed = full.complete(seq[0])
        assert completed.shape == seq.shape
        assert completed.dtype == np.uint8
        # The toy cycle is nearly linear in the conditions: PCA completes it well.
        assert dice_scores(completed, seq).mean() > 0.6
    assert not np.array_equal(one.complete(train[0, 0]), train[0])


def test_errors(sequences):
    with pytest.raises(CardioInputError, match="fit it"):
        PCABaseline().complete(sequences[0, 0])
    with pytest.raises(CardioInputError, match=">= 2 sequences"):
        PCABaseline().fit(sequences[:1])
    with pytest.raises(CardioInputError, match="all identical"):
        PCABaseline().fit(np.repeat(sequences[:1], 3, axis=0))
    fitted = PCABaseline().fit(sequences)
    with pytest.raises(CardioInputError, match="not the training grid"):
        fitted.complete(sequences[0, 0, :8])
