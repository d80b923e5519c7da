"""The bundled SPADE on real hearts it never saw: tissue contrast like the real images'.

Skips where ../shared (ACDC, M&Ms) is absent. Style from each frame's own real image, as
``evaluate spade --real`` does by default.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cardio_explorer import resources
from cardio_explorer.engine.io.cohort import read_cohort
from cardio_explorer.engine.io.split import read_split
from cardio_explorer.engine.nn.checkpoint import load_checkpoint
from cardio_explorer.engine.spade.data import prepare_subjects
from cardio_explorer.engine.spade.network import load_spade
from cardio_explorer.engine.spade.realism import CONTRAST_MAX_RELATIVE_ERROR, evaluate_contrast

SPLIT = Path(__file__).resolve().parents[2] / "docs" / "acdc_split.json"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bundled():
    checkpoint = load_checkpoint(resources.bundled_checkpoint("spade"), "spade")
    return checkpoint, load_spade(checkpoint)


def _contrast(bundled, subjects):
    checkpoint, model = bundled
    prepared = prepare_subjects(subjects, model.config.image_size, checkpoint.extra["spacing_mm"])
    return evaluate_contrast(model, prepared)


def test_bundled_spade_never_saw_the_held_out_acdc_subjects(bundled, acdc_dir):
    held_out = set(read_split(SPLIT, "held_out"))
    assert not held_out & set(bundled[0].extra["train_subjects"])


def test_contrast_of_held_out_acdc_images_is_the_real_one(bundled, acdc_dir):
    ids = read_split(SPLIT, "held_out")[::5]  # one subject in five: NOR to ARV, ED and ES
    subjects = read_cohort(acdc_dir, frames="ed_es", images=True, subject_ids=ids)
    real = _contrast(bundled, subjects)
    assert real["n_volumes"] == 2 * len(ids)
    for name, error in real["contrast"]["relative_error"].items():
        assert error <= CONTRAST_MAX_RELATIVE_ERROR, name


def test_contrast_of_mnms_images_is_the_real_one(bundled, realdata_dir):
    ids = ["G1K1V3", "G8R0Z9", "H1N8S6"]  # the three with images, three vendors
    subjects = read_cohort(realdata_dir, frames="ed_es", images=True, subject_ids=ids)
    real = _contrast(bundled, subjects)
    for name, error in real["contrast"]["relative_error"].items():
        assert error <= CONTRAST_MAX_RELATIVE_ERROR, name
