"""``evaluate utility`` end to end on a tiny ACDC-layout phantom cohort with images (seconds)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image
from tiny_models import TINY, TINY_SPADE

from cardio_explorer.app import cli
from cardio_explorer.app.commands.evaluate_utility import check_init_saw_only_scarce
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.acdc import write_info_cfg
from cardio_explorer.engine.io.nifti import write_image_volume, write_label_volume
from cardio_explorer.engine.nn.checkpoint import Checkpoint
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INTENSITY = np.array([-0.7, 0.6, -0.2, 0.5], dtype=np.float32)
# group -> (LV radius, wall thickness) in pixels of the 48 x 48 phantom: each group its own shape
SHAPE = {
    "NOR": (3.5, 2.0),
    "DCM": (5.0, 1.2),
    "HCM": (2.5, 3.5),
    "MINF": (4.5, 1.4),
    "RV": (3.0, 1.8),
}
# subjects per group: the last of each is held out
SPLIT = {"NOR": 3, "DCM": 2, "HCM": 2, "MINF": 2, "RV": 2}


def _stack(rng: np.random.Generator, group: str, scale: float, n: int = 5) -> np.ndarray:
    """(n, 48, 48) labels in ACDC values (1 RV, 2 MYO, 3 LV), smaller towards the apex."""
    radius, wall = SHAPE[group]
    yy, xx = np.mgrid[:48, :48].astype(np.float32)
    cy, cx = 24 + rng.uniform(-2, 2), 22 + rng.uniform(-2, 2)
    rv = 1.6 if group == "RV" else 1.2
    out = np.zeros((n, 48, 48), dtype=np.uint8)
    for k in range(n):
        r = radius * scale * (1 - 0.1 * k)
        out[k][np.hypot(yy - cy, xx - cx - 2 * r) < rv * r] = 1
        out[k][np.hypot(yy - cy, xx - cx) < r + wall] = 2
        out[k][np.hypot(yy - cy, xx - cx) < r] = 3
    return out


def write_cohort(root, seed: int = 0) -> tuple:
    """An ACDC-layout cohort with images and a split file: (folder, split path)."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    k = 0
    for group, n in SPLIT.items():
        for i in range(n):
            k += 1
            sid = f"patient{k:03d}"
            (held if i == n - 1 else train).append(sid)
            folder = root / sid
            folder.mkdir(parents=True)
            info = {"ED": 1, "ES": 6, "Group": group, "Height": 170, "NbFrame": 10, "Weight": 70}
            write_info_cfg(folder / "Info.cfg", info)
            for frame, scale in ((1, 1.0), (6, 0.75)):
                acdc = _stack(rng, group, scale)
                internal = np.array([0, 3, 2, 1], dtype=np.uint8)[acdc]
                image = INTENSITY[internal] + rng.normal(0, 0.05, acdc.shape).astype(np.float32)
                write_label_volume(
                    LabelVolume.from_array(acdc, (8.0, 1.5, 1.5)),
                    folder / f"{sid}_frame{frame:02d}_gt.nii.gz",
                    acdc_labels=True,
                )
                write_image_volume(
                    ImageVolume.from_array(image * 300 + 400, (8.0, 1.5, 1.5)),
                    folder / f"{sid}_frame{frame:02d}.nii.gz",
                )
    split = root.parent / "split.json"
    split.write_text(json.dumps({"rule": "test", "train": train, "held_out": held}))
    return root, split


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("utility")
    data, split = write_cohort(root / "acdc")
    other, _ = write_cohort(root / "other" / "centre2", seed=5)
    vae = root / "vae.json"
    vae.write_text(json.dumps(asdict(TINY)))
    spade = root / "spade.json"
    spade.write_text(json.dumps(TINY_SPADE.to_json()))
    tiny = [
        *("--size", "32", "--seg-size", "32", "--vae-config", str(vae)),
        *("--spade-config", str(spade), "--steps", "4", "--vae-epochs", "2"),
        *("--spade-epochs", "1", "--n-nor", "2", "--n-per-group", "1", "--base", "4"),
        *("--batch-size", "8", "--device", "cpu", "--threads", "1", "--no-progress"),
    ]
    return root, data, split, other, tiny


def _run(setup, out, *extra: str) -> int:
    _root, data, split, other, tiny = setup
    argv = ["evaluate", "utility", "--data", str(data), "--split", str(split)]
    argv += ["--test", str(data), "--test", str(other), "--out", str(out)]
    return cli.main([*argv, *tiny, *extra])


@pytest.fixture(scope="module")
def report(setup):
    out = setup[0] / "run" / "report.json"
    assert _run(setup, out) == 0
    return out, json.loads(out.read_text())


def _finite(x) -> bool:
    return isinstance(x, float | int) and math.isfinite(x)


def test_report_has_every_arm_seed_group_and_delta_per_test_set(report):
    _, r = report
    assert set(r["test_sets"]) == {"acdc-held-out", "centre2"}
    assert r["segmenter"]["lr_schedule"] == "cosine"
    held = r["test_sets"]["acdc-held-out"]
    # held-out part only: one subject per group, ED + ES each
    assert held["groups"] == {"NOR": 1, "DCM": 1, "HCM": 1, "MINF": 1, "ARV": 1}
    assert held["n_volumes"] == 10
    for name, t in r["test_sets"].items():
        for arm in ("a", "b", "c"):
            for pool in ("all", "nor", "pathological", "NOR", "DCM", "HCM", "MINF", "ARV"):
                for key in ("lv", "myo", "rv", "mean"):
                    cell = t["dice"][arm][pool][key]
                    assert cell["n_seeds"] == 3, (name, arm, pool)
                    assert 0.0 <= cell["mean"] <= 1.0
                    assert _finite(cell["sd"])
            assert len(t["volumes"][arm]) == 3  # seeds
        for key in ("delta.c_minus_a.pathological", "delta.c_minus_a.nor"):
            assert _finite(t["deltas"][key]), (name, key)
        assert _finite(t["deltas"]["delta.c_minus_b.pathological"])
        d = t["dice"]
        expected = d["c"]["pathological"]["mean"]["mean"] - d["a"]["pathological"]["mean"]["mean"]
        assert t["delta"]["c_minus_a"]["pathological"] == pytest.approx(expected, abs=2e-4)
        for by_pool in t["paired_tests"].values():
            assert by_pool["all"]["n_volumes"] == t["n_volumes"]
            p = by_pool["all"]["p_value"]
            assert p is None or 0.0 <= p <= 1.0
    assert len(r["targets"]) == 6  # three per test set with pathological groups
    assert r["command"].startswith("cardio-explorer evaluate utility --data ")
    assert "--seeds 0 1 2 --steps 4" in r["command"]
    assert r["command"].count("--test ") == 2
    assert "--atlas-refine-steps 30" in r["command"]
    assert r["synthetic"]["atlas_refine_steps"] == 30
    assert r["passed"] == all(t["pass"] for t in r["targets"].values())


def test_no_test_subject_trains_anything(report):
    _, r = report
    scarce = set(r["scarce"]["subjects"])
    assert r["scarce"]["groups"] == {"NOR": 2, "DCM": 1, "HCM": 1, "MINF": 1, "ARV": 1}
    assert set(r["models"]["label_vae"]["trained_on"]) == scarce
    assert not scarce & set(r["test_sets"]["acdc-held-out"]["subjects"])
    syn = r["synthetic"]
    assert set(syn["references"]) <= scarce
    assert syn["targets"] == ["ARV", "DCM", "HCM", "MINF"]
    # two NOR references x four targets x ED and ES; (b) holds as many extra slices as (c)
    assert syn["volumes"] == 16
    assert r["slices_per_arm"]["b"] == r["slices_per_arm"]["c"] > r["slices_per_arm"]["a"]


def test_the_combined_arm_trains_on_real_augmented_and_synthetic_slices(setup):
    out = setup[0] / "combined" / "report.json"
    assert _run(setup, out, "--combined", "--seeds", "0") == 0
    r = json.loads(out.read_text())
    assert list(r["arms"]) == ["a", "b", "c", "d"]
    slices = r["slices_per_arm"]
    # (d)'s extra half holds (b)'s augmented and (c)'s synthetic slices, so it is the largest
    assert slices["d"] > slices["c"] == slices["b"] > slices["a"]
    for t in r["test_sets"].values():
        assert len(t["volumes"]["d"]) == 1
        assert _finite(t["deltas"]["delta.d_minus_b.all"])
        assert t["paired_tests"]["d_minus_b"]["all"]["n_volumes"] == t["n_volumes"]
    assert r["command"].endswith("--combined")
    assert "(d) " in out.with_suffix(".md").read_text()
    assert len(r["targets"]) == 6  # (d) is reported, never a target


def test_plot_markdown_and_samples_are_written(report):
    out, r = report
    with Image.open(r["plot"]) as plot:
        assert plot.format == "PNG"
        assert plot.width >= 600
        assert plot.height >= 2 * 300
        assert len(plot.convert("RGB").getcolors(1 << 16)) > 10
    with Image.open(r["samples"]) as samples:
        assert samples.height == 6 * (32 + 2)  # real, augmented, synthetic: image + overlay
    text = out.with_suffix(".md").read_text()
    assert "## acdc-held-out" in text
    assert "| c_minus_a |" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--seg-size", "20"), "--seg-size"),
        (("--alphas", "1.5"), "--alphas"),
        (("--atlas-refine-steps", "-1"), "--atlas-refine-steps"),
        (("--n-per-group", "5"), "needs 5 DCM subjects"),
    ],
)
def test_bad_options_are_one_clear_error_and_write_nothing(setup, tmp_path, capsys, extra, message):
    out = tmp_path / "bad" / "report.json"
    assert _run(setup, out, *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_an_existing_report_is_kept_without_overwrite(setup, report, capsys):
    out, _ = report
    before = out.read_text()
    assert _run(setup, out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_text() == before


def test_a_spade_trained_on_subjects_outside_the_scarce_set_is_refused(tmp_path):
    """The bundled ACDC SPADE saw real subjects the scarce arms never see: arm (c) may not start
    from it (the check reads the checkpoint header's data folder and subject ids)."""
    data = tmp_path / "acdc"
    data.mkdir()
    extra = {"data": str(data), "train_subjects": ["patient001", "patient002"]}
    init = Checkpoint(kind="spade", config={}, tensors={}, extra=extra, path=tmp_path / "s")
    check_init_saw_only_scarce(init, data, {"patient001", "patient002"})
    check_init_saw_only_scarce(init, tmp_path / "elsewhere", {"patient001"})
    with pytest.raises(CardioInputError, match=r"--spade-init.*1 subjects.*patient002"):
        check_init_saw_only_scarce(init, data, {"patient001"})
