"""Computing cases: one unit (the alphas of one subject, group and seed) at a time, batched.

A unit decodes its morphs at ED and at ES in one decoder batch per phase (phenotypes need both
phases even when one is written), then, with images, runs SPADE over every slice of every
written phase in batches of ``image_batch`` slices, with the unit's style seed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.factory.morphs import SynthesisJob
from cardio_explorer.engine.factory.plan import ResolvedPlan
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.metrics.diagnosis import meets_group_rule
from cardio_explorer.engine.metrics.phenotypes import Phenotypes, measure_phenotypes
from cardio_explorer.engine.spade.inference import StyleSpec, encode_style, style_codes
from cardio_explorer.engine.spade.network import SpadeModel
from cardio_explorer.engine.subject import PHASES, BodySize, Conditions
from cardio_explorer.engine.volume import ImageVolume, LabelVolume

IMAGE_BATCH = 64


@dataclass(frozen=True, eq=False)
class Case:
    """One computed case: its index, job, volumes per written phase, what they measure."""

    index: int
    job: SynthesisJob
    labels: dict[str, LabelVolume]
    images: dict[str, ImageVolume]
    phenotypes: Phenotypes
    meets_group_rule: bool
    style_seed: int | None
    conditions: Conditions | None = None
    body: BodySize | None = None  # height and weight of the reference, known without conditions


def check_image_model(morph: PathologyMorph, spade: SpadeModel) -> None:
    """SPADE must make slices of the label VAE's size; said before any work."""
    config = getattr(morph.model, "config", None)
    size = getattr(config, "size", None)
    if size is not None and size != spade.config.image_size:
        raise CardioInputError(
            "--spade-checkpoint",
            f"makes {spade.config.image_size} x {spade.config.image_size} slices but the label "
            f"VAE decodes {size} x {size}; pick a SPADE model trained at {size}",
        )


@torch.inference_mode()
def spade_images(
    spade: SpadeModel,
    volumes: list[LabelVolume],
    style: int | np.ndarray,
    device: torch.device,
    batch: int,
) -> list[ImageVolume]:
    """SPADE images of several label volumes (one style: a seed or a code), slices batched."""
    slices = np.concatenate([v.data for v in volumes])
    spec = StyleSpec(seed=style) if isinstance(style, int) else style
    codes = style_codes(spade, spec, 1, device)
    out = np.empty(slices.shape, dtype=np.float32)
    for start in range(0, len(slices), batch):
        stop = min(start + batch, len(slices))
        labels = torch.from_numpy(np.ascontiguousarray(slices[start:stop])).to(device)
        with autocast(device):
            made = spade.synthesise(labels, codes.expand(stop - start, -1).to(device))
        out[start:stop] = made.float().cpu().numpy()
    # bf16 rounding can step a hair past tanh's range; int16 storage needs [-1, 1]
    np.clip(out, -1.0, 1.0, out=out)
    images, start = [], 0
    for vol in volumes:
        n = vol.data.shape[0]
        images.append(ImageVolume(data=out[start : start + n], affine=vol.affine, name=vol.name))
        start += n
    return images


class ReferenceStyles:
    """Style codes from the reference subjects' own images (ACDC layout folder), encoded once.

    ``load(subjects)`` reads and encodes them all before any work, so a missing image is one
    clear error up front."""

    def __init__(self, folder: str | Path, spade: SpadeModel) -> None:
        self.folder, self.spade = Path(folder), spade
        self.codes: dict[str, np.ndarray] = {}

    def load(self, subjects: Iterable[str]) -> ReferenceStyles:
        """Encode the ED image of each subject (preprocessed onto SPADE's grid)."""
        from cardio_explorer.engine.io.acdc import read_acdc_subject
        from cardio_explorer.engine.preprocess import preprocess_subject

        for sid in subjects:
            if sid in self.codes:
                continue
            subject = read_acdc_subject(self.folder / sid, images=True)
            if subject.ed_frame not in subject.images:
                raise CardioInputError(self.folder / sid, "has no ED image to take the style from")
            size = self.spade.config.image_size
            prepared = preprocess_subject(subject, size=size)
            self.codes[sid] = encode_style(self.spade, prepared.images[prepared.ed_frame])
        return self

    def code(self, subject_id: str) -> np.ndarray:
        """The style code of a reference subject."""
        return self.codes[subject_id]


def compute_unit(
    morph: PathologyMorph,
    spade: SpadeModel | None,
    plan: ResolvedPlan,
    unit: int,
    wanted: set[int] | None = None,
    image_batch: int = IMAGE_BATCH,
    styles: ReferenceStyles | None = None,
) -> list[Case]:
    """The cases of ``unit`` (only those in ``wanted`` when given), in alpha order; images in
    the subject's own style when ``styles`` is given, else from the unit's style seed."""
    p = plan.plan
    subject, group, seed = plan.unit(unit)
    first = unit * len(p.alphas)
    indices = [first + a for a in range(len(p.alphas))]
    keep = [k for k, i in enumerate(indices) if wanted is None or i in wanted]
    if not keep:
        return []
    # every alpha is decoded, wanted or not: the same batch on every run and rank, so a
    # resumed or split run writes the same bytes
    decoded = {}
    for phase in PHASES:
        every = morph.series(subject, group, phase, p.alphas, p.correlated, seed)
        decoded[phase] = [every[k] for k in keep]
    reference = morph.atlas.reference(subject)
    conditions = reference.conditions
    style_seed = plan.style_seed(unit) if p.images and styles is None else None
    images: dict[tuple[int, str], ImageVolume] = {}
    if p.images and spade is not None:
        order = [(k, phase) for k in range(len(keep)) for phase in p.phases]
        made = spade_images(
            spade,
            [decoded[phase][k].labels for k, phase in order],
            styles.code(subject) if styles is not None else style_seed,  # type: ignore[arg-type]
            morph.device,
            image_batch,
        )
        images = dict(zip(order, made, strict=True))
    cases = []
    for k, alpha_i in enumerate(keep):
        ed, es = decoded["ED"][k].labels, decoded["ES"][k].labels
        phenotypes = measure_phenotypes(ed, es)
        cases.append(
            Case(
                index=indices[alpha_i],
                job=plan.case(indices[alpha_i]),
                labels={phase: decoded[phase][k].labels for phase in p.phases},
                images={phase: images[(k, phase)] for phase in p.phases if (k, phase) in images},
                phenotypes=phenotypes,
                meets_group_rule=meets_group_rule(group, phenotypes, conditions, reference.bsa_m2),
                style_seed=style_seed,
                conditions=conditions,
                body=reference.body,
            )
        )
    return cases
