"""Atlas distance of real hearts: RMS z to the nearest group, per element."""

from __future__ import annotations

import numpy as np
import pytest

from cardio_explorer.engine.label_vae.atlas import LatentAtlas
from cardio_explorer.engine.label_vae.encoding import group_statistics
from cardio_explorer.engine.label_vae.real import active_dims, atlas_distance, real_targets


def _atlas(rng) -> LatentAtlas:
    stats = {}
    for group, centre in (("NOR", 0.0), ("DCM", 5.0)):
        stacks = centre + rng.normal(size=(6, 32, 4))
        stats[(group, "ED")] = group_statistics(group, "ED", stacks)
    return LatentAtlas(nz=4, n_slices=32, stats=stats, references={})


def test_distance_is_rms_z_to_the_nearest_group(rng):
    atlas = _atlas(rng)
    dcm = atlas.stats[("DCM", "ED")]
    assert atlas_distance(atlas, dcm.mean, "ED") == (pytest.approx(0.0), "DCM")
    one_sd = dcm.mean + dcm.std
    # (a random element's SD may fall under the floor, a tenth of the dimension's spread)
    assert atlas_distance(atlas, one_sd, "ED") == (pytest.approx(1.0, rel=0.01), "DCM")
    nor = atlas.stats[("NOR", "ED")]
    distance, group = atlas_distance(atlas, nor.mean - 2 * nor.std, "ED")
    assert group == "NOR"
    assert distance == pytest.approx(2.0, rel=0.01)
    # no group at that phase: no distance
    assert atlas_distance(atlas, nor.mean, "ES")[0] == np.inf


def test_real_targets_pass_and_fail_on_each_figure():
    real = {
        "recon_dice": {"lv": 0.95, "myo": 0.87, "rv": 0.9, "mean": 0.94, "min_volume": 0.8},
        "atlas_distance": {"mean": 1.6},
    }
    targets = real_targets(real)
    assert targets["real_recon_dice_mean"]["pass"]
    assert not targets["real_recon_dice_myo"]["pass"]
    assert targets["real_recon_dice_min_volume"]["pass"]
    assert not targets["real_atlas_distance_mean"]["pass"]
    real["recon_dice"]["mean"] = None
    assert not real_targets(real)["real_recon_dice_mean"]["pass"]


def test_collapsed_dimensions_do_not_count(rng):
    stats = {}
    for group, centre in (("NOR", 0.0), ("DCM", 5.0)):
        stacks = centre + rng.normal(size=(6, 32, 3))
        stacks[..., 2] = 0.0  # collapsed: the same code for every heart, stored SD 0
        stats[(group, "ES")] = group_statistics(group, "ES", stacks)
    atlas = LatentAtlas(nz=3, n_slices=32, stats=stats, references={})
    assert active_dims(atlas).tolist() == [True, True, False]
    codes = stats[("NOR", "ES")].mean.copy()
    codes[:, 2] = 0.05  # noise in the collapsed dimension: z would be 5e4
    assert atlas_distance(atlas, codes, "ES") == (pytest.approx(0.0), "NOR")


def test_an_element_every_atlas_heart_shares_does_not_explode(rng):
    stats = {}
    for group in ("NOR", "DCM"):
        stacks = rng.normal(size=(6, 32, 2))
        stacks[:, -4:, :] = 0.7  # the same (empty) apical slices in every heart: SD 0
        stats[(group, "ES")] = group_statistics(group, "ES", stacks)
    atlas = LatentAtlas(nz=2, n_slices=32, stats=stats, references={})
    codes = stats[("NOR", "ES")].mean.copy()
    codes[-4:, :] = 0.8  # a real heart with a little tissue there
    distance, _ = atlas_distance(atlas, codes, "ES")
    assert 0.1 < distance < 1.0  # floored SD: about 0.1 x the dimension's spread
