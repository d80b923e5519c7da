"""The synthetic cohort's range reaches what real hearts show (issue 19, part 1).

ACDC (80 subjects, measured with the project's phenotypes, README "CHeart that contracts"):
HCM LV mass to 272 g, maximum ED wall to 26 mm, LVEF to 82 %; the stored LV -> RV axis spreads
31 degrees (SD) about its mean, and over a stack the RV turns 32 +- 12 degrees about the LV.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cardio_explorer.engine.cohort.conditions import sample_conditions
from cardio_explorer.engine.cohort.generate import (
    CohortConfig,
    assign_groups,
    subject_seeds,
    synthesize_subject,
)
from cardio_explorer.engine.cohort.physiology import sample_targets
from cardio_explorer.engine.frame import lv_rv_angle
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.diagnosis import meets_group_rule
from cardio_explorer.engine.metrics.orientation import about_mean_deg, rv_slice_angles
from cardio_explorer.engine.preprocess import preprocess_subject, to_canonical_orientation

HCM = CohortConfig(n=120, seed=19, images=False, groups={"HCM": 1.0})


def _targets(config: CohortConfig, index: int):
    """The targets subject ``index`` draws (the first draws of its own generator)."""
    rng = np.random.default_rng(subject_seeds(config)[index])
    return sample_targets("HCM", sample_conditions("HCM", rng), rng)


def _built(index: int):
    return synthesize_subject(f"p{index}", "HCM", subject_seeds(HCM)[index], HCM)


def test_the_hcm_tail_reaches_heavy_thick_hearts_on_the_labels():
    targets = [_targets(HCM, i) for i in range(HCM.n)]
    heaviest = _built(int(np.argmax([t.lvm_g for t in targets])))
    ph = heaviest.phenotypes  # measured on the written labels
    assert ph.lvm_g > 300.0
    assert 20.0 < ph.max_wall_mm <= 26.0
    assert meets_group_rule("HCM", ph, heaviest.conditions)
    # Not beyond real hearts: LV mass at most 400 g, walls at most 25 mm targeted.
    assert max(t.lvm_g for t in targets) <= 400.0
    assert max(t.max_wall_mm for t in targets) <= 25.0


def test_a_hyperdynamic_hcm_heart_builds_its_small_es_cavity():
    targets = [_targets(HCM, i) for i in range(HCM.n)]
    index = int(np.argmax([t.lvef for t in targets]))
    s = _built(index)
    ph = s.phenotypes
    assert ph.lvef > 80.0
    assert abs(ph.lvef - targets[index].lvef) < 0.5
    assert ph.lvesv_ml < 0.2 * ph.lvedv_ml
    # The small end-systolic cavity is still there on every slice it spans, ringed by wall.
    es = s.labels.frame(s.es_frame).data
    cavity = np.flatnonzero((es == Label.LV).any(axis=(1, 2)))
    assert cavity.size >= 3
    assert np.all((es[cavity] == Label.MYO).any(axis=(1, 2)))


@pytest.fixture(scope="module")
def mixed():
    config = CohortConfig(n=30, seed=23, images=False, n_frames=10)
    groups, seeds = assign_groups(config), subject_seeds(config)
    return [synthesize_subject(f"p{i}", groups[i], seeds[i], config) for i in range(config.n)]


def test_the_stored_rv_angle_spreads_like_acdc(mixed):
    stored = [
        lv_rv_angle([to_canonical_orientation(s.labels.frame(t)) for t in (0, s.es_frame)])
        for s in mixed
    ]
    spread = about_mean_deg(stored)
    assert np.ptp(spread) > 60.0
    assert 20.0 < spread.std() < 40.0
    assert np.abs(spread).max() < 90.0


def test_after_the_anatomical_frame_the_rv_still_turns_from_base_to_apex(mixed):
    turns = []
    for s in mixed[:12]:
        whole = s.to_subject()
        ed_es = replace(whole, labels={t: whole.labels[t] for t in (0, s.es_frame)})
        framed = preprocess_subject(ed_es).labels[0]
        angles = np.degrees(np.unwrap(np.radians(rv_slice_angles(framed))))
        turns.append(angles[0] - angles[-1])
    # ACDC (ACDC's handedness, slices base to apex): 32 +- 12 degrees, one way round.
    assert 20.0 < np.mean(turns) < 45.0
    assert np.mean(np.sign(turns) > 0) > 0.8
