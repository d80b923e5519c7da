"""Tiny models and a tiny ACDC-layout cohort shared by the app and GUI tests (seeded, fast).

Plain functions, not fixtures: each test module wraps them in the fixtures (and scopes) it needs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cardio_explorer.engine.io.acdc import read_acdc_subject, write_info_cfg
from cardio_explorer.engine.io.nifti import write_label_volume
from cardio_explorer.engine.label_vae.atlas import atlas_extra
from cardio_explorer.engine.label_vae.config import LabelVaeConfig
from cardio_explorer.engine.label_vae.encoding import build_atlas
from cardio_explorer.engine.label_vae.network import build_label_vae, save_label_vae
from cardio_explorer.engine.nn.onehot import one_hot
from cardio_explorer.engine.preprocess import preprocess_subject
from cardio_explorer.engine.spade.config import LEAN as SPADE_LEAN
from cardio_explorer.engine.volume import LabelVolume

SIZE = 32
TINY = LabelVaeConfig(
    name="tiny",
    nz=4,
    size=SIZE,
    encoder_channels=(4, 8),
    encoder_convs_per_block=1,
    encoder_fc=(16,),
    decoder_fc=(16,),
    decoder_channels=(8, 8, 4),
    output_stride=1,
    head_channels=0,
)
# A SPADE generator for SIZE x SIZE slices, small enough to train in seconds on a CPU.
TINY_SPADE = replace(
    SPADE_LEAN,
    image_size=SIZE,
    z_dim=8,
    base_channels=16,
    up_channels=(8, 8, 8),
    spade_hidden=8,
    enc_base=4,
    enc_max=16,
    ndf=8,
)
# (id, group, slices)
COHORT = (("p1", "NOR", 6), ("p2", "NOR", 3), ("p3", "DCM", 7), ("p4", "HCM", 5))


def heart_stack(n_slices: int, radius: float) -> np.ndarray:
    """(n_slices, SIZE, SIZE) labels: LV disc, myocardial ring, RV beside; smaller to the apex."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    data = np.zeros((n_slices, SIZE, SIZE), dtype=np.uint8)
    for k in range(n_slices):
        r = radius * (1.0 - 0.4 * k / n_slices)
        cavity = np.hypot(yy - 16, xx - 13)
        data[k][np.hypot(yy - 16, xx - 23) < r + 2] = 3
        data[k][cavity < r + 2] = 2
        data[k][cavity < r] = 1
    return data


def write_tiny_cohort(root: Path) -> Path:
    """Write COHORT in ACDC layout (ED frame 1, ES frame 8) under root; returns root."""
    for sid, group, n in COHORT:
        folder = root / sid
        folder.mkdir(parents=True)
        radius = 7.0 if group == "DCM" else 5.0
        for frame, scale in ((1, 1.0), (8, 0.7)):
            vol = LabelVolume.from_array(heart_stack(n, radius * scale), (8.0, 1.5, 1.5))
            write_label_volume(vol, folder / f"{sid}_frame{frame:02d}_gt.nii.gz", acdc_labels=True)
        write_info_cfg(
            folder / "Info.cfg",
            {
                "ED": 1,
                "ES": 8,
                "Group": group,
                "Height": 170.0,
                "NbFrame": 20,
                "Weight": 70.0,
                "Age": 50.0,
                "Sex": "M",
                "SBP": 120.0,
            },
        )
    return root


def _fit(model: torch.nn.Module, slices: np.ndarray, steps: int) -> None:
    """A few Adam steps on all slices (enough for the tiny model to draw heart-like shapes)."""
    target = torch.from_numpy(slices.astype(np.int64))
    x = one_hot(target)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        out = model(x)
        model.loss(out, target, beta=0.01).total.backward()
        optimiser.step()
    model.eval()


def _balance_classes(model: torch.nn.Module, codes: np.ndarray) -> None:
    """Shift the last layer's biases so every class wins somewhere for these codes.

    An untrained decoder decodes everything as one class; balanced, it draws a patchy mix of
    all four that changes with the code: non-empty surfaces and phenotypes that move, at once.
    """
    with torch.no_grad():
        logits = model.decode(torch.as_tensor(codes, dtype=torch.float32))
        model.head[-1].bias -= logits.mean(dim=(0, 2, 3))


def tiny_label_vae_checkpoint(
    cohort: Path, path: Path, train_steps: int = 0, balanced: bool = False
) -> Path:
    """A tiny label VAE (seeded; optionally fitted a little, or class-balanced) with a latent
    atlas of the cohort."""
    torch.manual_seed(0)
    model = build_label_vae(TINY).eval()
    subjects = [
        preprocess_subject(read_acdc_subject(cohort / sid), size=SIZE) for sid, _, _ in COHORT
    ]
    if train_steps:
        slices = np.concatenate([v.data for s in subjects for v in s.labels.values()])
        _fit(model, slices, train_steps)
    atlas = build_atlas(model, subjects, refine_steps=0)  # the fast posterior means
    if balanced:  # the encoder is untouched, so the atlas's codes stay valid
        codes = np.concatenate([r.codes[p] for r in atlas.references.values() for p in r.codes])
        _balance_classes(model, codes)
    return save_label_vae(path, model, extra=atlas_extra(atlas))


def tiny_cheart_checkpoint(path: Path, seed: int = 0, groups: bool = False) -> Path:
    """An untrained tiny CHeart model (16^3 voxels, 6 frames) with toy condition statistics;
    ``groups``: with a prior of one component per ACDC group (:func:`grouped_prior`)."""
    from cardio_explorer.engine.cheart.toy import random_model

    model = random_model(seed=seed)
    if groups:
        model = replace(model, prior=grouped_prior(model.config.z_dim, seed))
    return model.save(path)


def grouped_prior(z_dim: int, seed: int = 0, per_group: int = 8):
    """A CHeart latent prior with one component per ACDC group, fitted to made-up posterior
    means whose group means lie far apart (so each component gives other hearts)."""
    from cardio_explorer.engine.cheart.config import N_CONDITIONS
    from cardio_explorer.engine.cheart.prior import fit_latent_prior
    from cardio_explorer.engine.subject import GROUPS

    rng = np.random.default_rng(seed)
    groups = [g for g in GROUPS for _ in range(per_group)]
    offsets = {g: 3.0 * rng.normal(size=z_dim) for g in GROUPS}
    means = np.stack([offsets[g] for g in groups]) + 0.1 * rng.normal(size=(len(groups), z_dim))
    return fit_latent_prior(means, rng.normal(size=(len(groups), N_CONDITIONS)), groups)


def tiny_spade_checkpoint(path: Path, seed: int = 0) -> Path:
    """An untrained tiny SPADE generator + style encoder for 32 x 32 slices."""
    from cardio_explorer.engine.nn.checkpoint import save_checkpoint
    from cardio_explorer.engine.spade.network import SpadeModel, model_tensors

    torch.manual_seed(seed)
    model = SpadeModel(TINY_SPADE, with_discriminator=False)
    return save_checkpoint(path, "spade", TINY_SPADE.to_json(), model_tensors(model))
