"""The app state: events, validation and clamping, undo / redo with merged drags; no Qt."""

from __future__ import annotations

import pytest

from cardio_explorer.app.jobs.state import DEFAULT_CONDITIONS, AppState
from cardio_explorer.engine.errors import CardioInputError


def test_listeners_hear_each_change_once_and_not_unchanged_values():
    state = AppState()
    heard = []
    state.subscribe(lambda name, value: heard.append((name, value)))
    assert state.set("alpha", 0.3)
    assert not state.set("alpha", 0.3)
    state.update({"phase": "ES", "seed": 4})
    assert heard == [("alpha", 0.3), ("phase", "ES"), ("seed", 4)]


def test_alpha_is_clamped_and_bad_values_are_clear_errors():
    state = AppState()
    state.set("alpha", 1.7)
    assert state.alpha == 1.0
    state.set("alpha", -2)
    assert state.alpha == 0.0
    with pytest.raises(CardioInputError, match="phase"):
        state.set("phase", "XX")
    with pytest.raises(CardioInputError, match="unknown field"):
        state.set("colour", 1)
    with pytest.raises(CardioInputError, match="seed"):
        state.set("seed", -1)


def test_the_cheart_group_is_normal_by_default_and_checked():
    state = AppState()
    assert state.cheart_group == "NOR"
    assert state.snapshot()["cheart_group"] == "NOR"
    state.set("cheart_group", "any")
    assert state.cheart_group == "any"
    with pytest.raises(CardioInputError, match="CHeart group: must be one of"):
        state.set("cheart_group", "normal")


def test_undo_redo_restores_values_and_notifies():
    state = AppState()
    heard = []
    state.subscribe(lambda name, value: heard.append((name, value)))
    state.set("alpha", 0.2)
    state.set("target_group", "HCM")
    assert state.undo()
    assert state.target_group == "DCM"
    assert state.undo()
    assert state.alpha == 0.5
    assert not state.undo()
    assert state.redo()
    assert state.alpha == 0.2
    assert heard[-1] == ("alpha", 0.2)
    state.set("seed", 9)  # a new change drops the redo history
    assert not state.can_redo


def test_a_drag_is_one_undo_step_and_frames_are_not_undoable():
    state = AppState()
    for value in (0.51, 0.6, 0.7, 0.8):
        state.set("alpha", value, merge=True)
    state.end_merge()
    state.set("alpha", 0.9, merge=True)
    state.set("frame", 3)
    assert state.undo()
    assert state.alpha == 0.8
    assert state.undo()
    assert state.alpha == 0.5
    assert state.frame == 3
    assert not state.can_undo


def test_snapshot_restore_round_trip():
    state = AppState()
    state.update({"alpha": 0.25, "correlated": False, "seed": 12, "phase": "ES"})
    snapshot = state.snapshot()
    assert snapshot["conditions"] == DEFAULT_CONDITIONS.as_dict()
    other = AppState()
    other.restore({**snapshot, "not_a_field": 1})
    assert other.snapshot() == snapshot


def test_the_morph_query_is_the_controls_and_decodes_what_the_engine_decodes(tmp_path):
    import numpy as np
    import torch
    from tiny_models import tiny_label_vae_checkpoint, write_tiny_cohort

    from cardio_explorer.app.jobs.models import load_slot

    path = tiny_label_vae_checkpoint(write_tiny_cohort(tmp_path), tmp_path / "vae.safetensors")
    morph = load_slot("label_vae", path, torch.device("cpu")).model
    subject = morph.atlas.reference_ids[1]
    state = AppState(subject_id=subject, target_group="HCM", phase="ES", alpha=0.3, seed=5)
    state.set("correlated", False)
    query = state.morph_query()
    assert (query.subject_id, query.target_group, query.phase) == (subject, "HCM", "ES")
    assert (query.alpha, query.correlated, query.seed, query.other_phase) == (0.3, False, 5, "ED")
    expected = morph.morph(subject, "HCM", "ES", 0.3, False, 5).labels.data
    np.testing.assert_array_equal(query.decode(morph).labels.data, expected)
    at_one = morph.morph(subject, "HCM", "ED", 1.0, False, 5).labels.data
    np.testing.assert_array_equal(query.at(1.0).decode(morph, phase="ED").labels.data, at_one)
    # alpha reaches the engine (codes differ; a tiny decoder may not show it in labels)
    codes = query.latent_path(morph, 1.0)
    np.testing.assert_array_equal(codes, morph.latent_path(subject, "HCM", "ES", 1.0, False, 5))
    assert not np.allclose(codes, query.latent_path(morph, 0.0))
