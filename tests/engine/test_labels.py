"""The one label table: structures, colours, the ACDC remap and how files state the values."""

import numpy as np
import pytest

from cardio_explorer.engine.labels import (
    ACDC_TO_INTERNAL,
    INTERNAL_TO_ACDC,
    LABEL_TABLE,
    STRUCTURES,
    Label,
    describe_values,
    remap,
    value_names,
)


def test_structures_follow_the_table():
    assert list(STRUCTURES) == ["lv", "myo", "rv"]
    assert [LABEL_TABLE.name(v) for v in STRUCTURES.values()] == list(STRUCTURES)
    assert LABEL_TABLE.rgb(Label.LV) == LABEL_TABLE.entry(1).rgb != LABEL_TABLE.rgb(Label.RV)
    with pytest.raises(KeyError):
        LABEL_TABLE.entry(7)
    with pytest.raises(TypeError):
        STRUCTURES["lv"] = Label.RV  # read-only


def test_acdc_remap_round_trips_and_swaps_the_ventricles():
    internal = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    acdc = remap(internal, INTERNAL_TO_ACDC)
    assert acdc.dtype == np.uint8
    assert acdc.tolist() == [[0, 3], [2, 1]]
    assert np.array_equal(remap(acdc, ACDC_TO_INTERNAL), internal)


def test_files_state_the_values_they_hold():
    assert value_names() == {1: "LV", 2: "MYO", 3: "RV"}
    assert value_names(acdc_labels=True) == {1: "RV", 2: "MYO", 3: "LV"}
    assert describe_values() == "1 LV, 2 MYO, 3 RV"
    assert describe_values(True) == "1 RV, 2 MYO, 3 LV"
