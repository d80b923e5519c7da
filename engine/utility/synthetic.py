"""Arm (c)'s synthetic cases: a label VAE + atlas and a SPADE model trained on the scarce set only.

1. Label VAE trained from scratch on the scarce subjects' ED/ES label slices; its latent atlas is
   built from the same subjects (12 NOR references, 2 per pathology by default), so no test
   subject and no other training subject shapes the morphs.
2. SPADE: the bundled generator (trained on the project's synthetic cohort, never on a real
   heart) fine-tuned on the scarce subjects' real image/label slices; a non-bundled config
   trains from scratch. Either way the only real images it sees are the scarce ones.
3. Every scarce NOR subject is morphed towards every pathology group present (alpha, seed), ED
   and ES from one draw, decoded at the subject's own slice positions, and given an image by
   SPADE in the style of that subject's own real image of the same phase.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.config import LabelVaeConfig
from cardio_explorer.engine.label_vae.encoding import REFINE_STEPS, build_atlas
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.label_vae.training import TrainOptions, train_label_vae
from cardio_explorer.engine.nn.checkpoint import Checkpoint
from cardio_explorer.engine.nn.slices import collect_label_slices
from cardio_explorer.engine.nn.training import batch_indices, progress_bar, reseed_epoch
from cardio_explorer.engine.spade.config import SpadeConfig
from cardio_explorer.engine.spade.data import ImageLabelSlices, collect_image_label_slices
from cardio_explorer.engine.spade.inference import StyleSpec, synthesise_images
from cardio_explorer.engine.spade.network import SpadeModel, prepare_for_inference
from cardio_explorer.engine.spade.training import SpadeTrainer, StepLosses, TrainSettings
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.utility.data import REFERENCE_GROUP


@dataclass(frozen=True)
class SynthesisSettings:
    """How the generative models behind arm (c) are trained and sampled."""

    vae_config: LabelVaeConfig = field(default_factory=LabelVaeConfig)
    vae_epochs: int = 40
    vae_beta: float = 5.0
    spade_config: SpadeConfig | None = None  # None: the bundled model's
    spade_epochs: int = 6
    alphas: tuple[float, ...] = (1.0,)
    seeds_per_target: int = 1
    correlated: bool = True
    atlas_refine_steps: int = REFINE_STEPS
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-able summary (configs by name or fields)."""
        return {
            "vae_config": self.vae_config.name,
            "vae_epochs": self.vae_epochs,
            "vae_beta": self.vae_beta,
            "spade_epochs": self.spade_epochs,
            "alphas": list(self.alphas),
            "seeds_per_target": self.seeds_per_target,
            "correlated": self.correlated,
            "atlas_refine_steps": self.atlas_refine_steps,
            "seed": self.seed,
        }


@dataclass
class SyntheticCases:
    """Synthetic image/label slices and how they were made."""

    slices: ImageLabelSlices
    n_volumes: int
    per_target: dict[str, int]
    provenance: dict[str, Any]


def train_scarce_label_vae(
    subjects: Sequence[Subject],
    settings: SynthesisSettings,
    device: torch.device,
    threads: int | None,
    progress: bool,
) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """(label VAE, latent atlas, provenance) trained and built on the scarce subjects only."""
    slices = collect_label_slices(subjects, size=settings.vae_config.size)
    options = TrainOptions(
        epochs=settings.vae_epochs,
        beta=settings.vae_beta,
        beta_warmup_epochs=max(1.0, settings.vae_epochs / 5),
        seed=1220 + settings.seed,
        device=str(device),
        val_fraction=0.0,
        checkpoint_every=0,
        validate_every=0,
        threads=threads,
        progress=progress,
    )
    result = train_label_vae(slices, None, settings.vae_config, options)
    atlas = build_atlas(
        result.model, list(subjects), result.device, refine_steps=settings.atlas_refine_steps
    )
    info = {
        "trained_on": [s.subject_id for s in subjects],
        "slices": len(slices),
        "epochs": settings.vae_epochs,
        "final_loss": round(float(result.history[-1].loss), 3),
        "seconds": round(result.seconds, 1),
        "atlas_subjects_per_group": atlas.info["subjects_per_group"],
    }
    return result.model, atlas, info


def train_scarce_spade(
    slices: ImageLabelSlices,
    init: Checkpoint | None,
    config: SpadeConfig,
    settings: SynthesisSettings,
    device: torch.device,
    progress: bool,
) -> tuple[SpadeModel, dict[str, Any]]:
    """SPADE fine-tuned (``init``) or trained from scratch on the scarce real slices."""
    torch.manual_seed(settings.seed)
    model = SpadeModel(config, with_discriminator=True)
    if init is not None:
        for prefix in ("encoder.", "generator."):
            init.load_into(getattr(model, prefix[:-1]), prefix)
    train = TrainSettings(epochs=settings.spade_epochs, batch_size=16, seed=settings.seed)
    batch = min(train.batch_size, len(slices))
    if batch < 2:
        raise CardioInputError("scarce set", f"has {len(slices)} image slices, SPADE needs 2")
    trainer = SpadeTrainer(model, train, device)
    labels_all, images_all = torch.from_numpy(slices.labels), torch.from_numpy(slices.images)
    losses: list[float] = []
    for epoch in range(settings.spade_epochs):
        batches = batch_indices(len(slices), batch, reseed_epoch(settings.seed, epoch))
        bar = progress_bar(len(batches), f"SPADE {epoch + 1}/{settings.spade_epochs}", progress)
        total = 0.0
        for idx in batches:
            terms = trainer.update(labels_all[idx].to(device), images_all[idx].to(device))
            total += StepLosses(*terms.tolist()).reconstruction
            bar.update(1)
        bar.close()
        losses.append(round(total / len(batches), 4))
    info = {
        "init": init.path.name if init is not None and init.path else "scratch",
        "init_trained_on": init.extra.get("data") if init is not None else None,
        "init_sha256": init.sha256 if init is not None else None,
        "epochs": settings.spade_epochs,
        "slices": len(slices),
        "reconstruction_l1_per_epoch": losses,
    }
    return prepare_for_inference(trainer.model, device), info


def synthesise_cases(
    vae: torch.nn.Module,
    atlas: Any,
    spade: SpadeModel,
    references: Sequence[Subject],
    settings: SynthesisSettings,
    device: torch.device,
    progress: bool,
) -> SyntheticCases:
    """Morph every NOR reference to every pathology of the atlas; SPADE images in its style."""
    morph = PathologyMorph(vae, atlas, device)
    targets = sorted({g for g, _ in atlas.stats} - {REFERENCE_GROUP})
    nor = [s for s in references if s.group == REFERENCE_GROUP and s.subject_id in atlas.references]
    if not targets or not nor:
        raise CardioInputError("scarce set", "needs NOR subjects and at least one pathology group")
    jobs = [
        (ref, target, alpha, settings.seed * 1000 + k)
        for ref in nor
        for target in targets
        for alpha in settings.alphas
        for k in range(settings.seeds_per_target)
    ]
    labels, images = [], []
    per_target = dict.fromkeys(targets, 0)
    bar = progress_bar(len(jobs), "synthetic cases", progress, unit="case")
    for ref, target, alpha, seed in jobs:
        for phase, frame in (("ED", ref.ed_frame), ("ES", ref.es_frame)):
            if frame not in ref.images:
                continue
            step = morph.morph(ref.subject_id, target, phase, alpha, settings.correlated, seed)
            volume = morph.at_native_slices(step)
            if not volume.data.any():
                continue
            style = StyleSpec(reference=ref.images[frame])
            image = synthesise_images(spade, volume, style, device)
            labels.append(volume.data)
            images.append(np.clip(image.data, -1.0, 1.0))
            per_target[target] += 1
        bar.update(1)
    bar.close()
    if not labels:
        raise CardioInputError("synthetic cases", "every morph decoded to an empty heart")
    n = sum(len(x) for x in labels)
    zeros = np.zeros(n, dtype=np.int32)
    slices = ImageLabelSlices(
        labels=np.ascontiguousarray(np.concatenate(labels), dtype=np.uint8),
        images=np.ascontiguousarray(np.concatenate(images), dtype=np.float32),
        subject_ids=("synthetic",),
        subject_index=zeros,
        frame_index=zeros,
        slice_index=zeros,
    )
    provenance = {
        "references": [s.subject_id for s in nor],
        "targets": targets,
        "style": "the reference subject's own real image of the same phase",
        **settings.to_json(),
    }
    return SyntheticCases(slices, len(labels), per_target, provenance)


def scarce_image_slices(subjects: Sequence[Subject], size: int) -> ImageLabelSlices:
    """The scarce subjects' real image/label slices (ED and ES)."""
    return collect_image_label_slices(subjects, size)
