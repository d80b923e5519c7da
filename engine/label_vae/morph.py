"""NOR -> pathology morph: linear path in latent space, all slices decoded in one batch.

For a NOR reference subject of the atlas, a target group, a phase and alpha in [0, 1], the
latent path is (1 - alpha) * subject codes + alpha * pseudo-pathology sample (32 x nz); decoding
its 32 slices gives a label stack on the atlas's in-plane grid. The codes say where along the
stack each slice lies, not how long the stack is, so the length is morphed too: from the
subject's own extent to the target group's mean (a dilated heart is longer: in ACDC's training
split DCM stacks span 88 mm, NOR 72 mm), with the base slice kept in place. The sample is
cached per (subject, group, phase, correlated, seed), so moving alpha costs only the
interpolation and one decode. ED and ES with the same seed share one standard-normal draw,
which keeps EF meaningful along the morph.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.atlas import LatentAtlas, atlas_from_extra
from cardio_explorer.engine.label_vae.encoding import eval_mode, interpolate_codes
from cardio_explorer.engine.label_vae.network import load_label_vae
from cardio_explorer.engine.label_vae.sampling import PseudoPathologySampler
from cardio_explorer.engine.metrics.phenotypes import Phenotypes, measure_phenotypes
from cardio_explorer.engine.nn.checkpoint import Checkpoint
from cardio_explorer.engine.preprocess import DEFAULT_FRAME, check_frame, frame_of_checkpoint
from cardio_explorer.engine.volume import LabelVolume, SourceGrid

# Slices per decoder call: a few stacks on CPU (memory), many on a GPU (throughput).
_CPU_BATCH = 64
_CUDA_BATCH = 1024
# On CPU a call's widest activation, counted in fp32, stays within this: glibc maps blocks over
# 32 MB fresh and the kernel zeroes every page again (engine/device.py keep_freed_memory),
# which cost the paper network 15 % of its decode in one batch of 32 slices (8 now).
_CPU_BATCH_BYTES = 32 * 2**20

# One sampler (and its cache) per atlas, shared by every PathologyMorph and morph_pathology call.
_SAMPLERS: weakref.WeakKeyDictionary[LatentAtlas, PseudoPathologySampler] = (
    weakref.WeakKeyDictionary()
)


def sampler_for(atlas: LatentAtlas) -> PseudoPathologySampler:
    """The shared, caching sampler of an atlas."""
    if atlas not in _SAMPLERS:
        _SAMPLERS[atlas] = PseudoPathologySampler(atlas)
    return _SAMPLERS[atlas]


@dataclass(frozen=True, eq=False)
class MorphResult:
    """A decoded morph step: labels (32 slices over the subject's extent) and its latent codes."""

    labels: LabelVolume
    latent_path: np.ndarray  # (n_slices, nz) codes that were decoded
    alpha: float
    subject_id: str
    target_group: str
    phase: str
    correlated: bool
    seed: int


def check_alpha(alpha: float) -> float:
    """alpha as a float in [0, 1]; a clear error otherwise (the GUI clamps before calling)."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise CardioInputError("alpha", f"must be a number in [0, 1], got {alpha!r}") from None
    if not math.isfinite(value) or value < 0.0 or value > 1.0:
        raise CardioInputError("alpha", f"must be in [0, 1], got {alpha!r}")
    return value


def decode_codes(
    model: torch.nn.Module, codes: np.ndarray, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Decode (n, nz) latent codes to (n, H, W) uint8 labels (argmax of the decoder's logits)."""
    device = torch.device(device)
    z = torch.as_tensor(np.asarray(codes), dtype=torch.float32)
    batch = _CUDA_BATCH if device.type == "cuda" else _cpu_batch(model)
    out = []
    with eval_mode(model), torch.inference_mode(), autocast(device):
        for start in range(0, len(z), batch):
            logits = model.decode(z[start : start + batch].to(device))
            out.append(logits.argmax(dim=1).to(torch.uint8).cpu())
    return torch.cat(out).numpy()


def _cpu_batch(model: torch.nn.Module) -> int:
    """Slices per CPU decoder call: ``_CPU_BATCH``, fewer when one slice's widest full-size
    activation (fp32 bytes) would take a call past ``_CPU_BATCH_BYTES``."""
    config = getattr(model, "config", None)
    if config is None:
        return _CPU_BATCH
    side = config.size // config.output_stride
    widest = max(config.decoder_channels[-1], config.head_channels, config.n_classes)
    per_slice = 4 * widest * side * side
    return max(1, min(_CPU_BATCH, _CPU_BATCH_BYTES // per_slice))


class PathologyMorph:
    """Morphs of an atlas's reference subjects with one label VAE on one device."""

    def __init__(
        self,
        model: torch.nn.Module,
        atlas: LatentAtlas,
        device: torch.device | str = "cpu",
        optimise: bool = True,
        sources: dict[tuple[str, str], SourceGrid] | None = None,
        frame: str = DEFAULT_FRAME,
    ) -> None:
        """``sources``: (subject id, phase) -> the grid of the file that subject was read from;
        morphs of those subjects carry it, so exports can go back onto that file's grid.
        ``frame``: the frame (anatomical or header) new hearts are preprocessed into, the
        model's training frame."""
        # A model that offers an inference copy (BatchNorm folded, ~1.3x faster) decodes with it.
        if optimise and hasattr(model, "for_inference"):
            model = model.for_inference()
        self.model = model
        self.atlas = atlas
        self.device = torch.device(device)
        self.sampler = sampler_for(atlas)
        self.sources = dict(sources or {})
        self.frame = check_frame(frame)

    @classmethod
    def from_checkpoint(
        cls, source: str | Path | Checkpoint, device: torch.device | str = "cpu"
    ) -> PathologyMorph:
        """Label VAE and latent atlas of one checkpoint (a file, or one read already), ready to
        morph on ``device``."""
        model, checkpoint = load_label_vae(source, device)
        atlas = atlas_from_extra(checkpoint.extra, checkpoint.path or source)
        return cls(model, atlas, device, frame=frame_of_checkpoint(checkpoint.extra))

    def latent_path(
        self,
        subject_id: str,
        target_group: str,
        phase: str,
        alpha: float,
        correlated: bool = True,
        seed: int = 0,
    ) -> np.ndarray:
        """(n_slices, nz) codes at ``alpha`` between the subject and the target sample."""
        alpha = check_alpha(alpha)
        source = self.atlas.reference(subject_id).phase_codes(phase)
        target = self.sampler.sample(subject_id, target_group, phase, correlated, seed)
        return (1.0 - alpha) * source + alpha * target

    def morph(
        self,
        subject_id: str,
        target_group: str,
        phase: str,
        alpha: float,
        correlated: bool = True,
        seed: int = 0,
    ) -> MorphResult:
        """One decoded morph step."""
        return self.series(subject_id, target_group, phase, [alpha], correlated, seed)[0]

    def series(
        self,
        subject_id: str,
        target_group: str,
        phase: str,
        alphas: Sequence[float],
        correlated: bool = True,
        seed: int = 0,
    ) -> list[MorphResult]:
        """Morph steps at several alphas, decoded in as few batches as the device allows."""
        paths = [
            self.latent_path(subject_id, target_group, phase, a, correlated, seed) for a in alphas
        ]
        if not paths:
            return []
        slices = decode_codes(self.model, np.concatenate(paths), self.device)
        geometry = self.atlas.reference(subject_id).geometry[phase]
        n = self.atlas.n_slices
        results = []
        for i, (alpha, path) in enumerate(zip(alphas, paths, strict=True)):
            affine = geometry.resampled_affine(n)
            affine[:3, 2] *= self.length_scale(subject_id, target_group, phase, alpha)
            labels = LabelVolume(
                data=slices[i * n : (i + 1) * n],
                affine=affine,
                name=f"{subject_id} -> {target_group} {phase} alpha {float(alpha):.2f}",
                source_grid=self.sources.get((subject_id, phase)),
            )
            results.append(
                MorphResult(
                    labels,
                    path,
                    float(alpha),
                    subject_id,
                    target_group,
                    phase,
                    bool(correlated),
                    int(seed),
                )
            )
        return results

    def length_scale(self, subject_id: str, target_group: str, phase: str, alpha: float) -> float:
        """Factor on the subject's slice spacing at ``alpha``: its extent morphed linearly to
        the target group's mean extent (1 when the atlas or a single-slice stack has none)."""
        own = self.atlas.reference(subject_id).geometry[phase].extent_mm
        target = self.atlas.group_stats(target_group, phase).extent_mm
        if target is None or own <= 0:
            return 1.0
        alpha = check_alpha(alpha)
        return ((1.0 - alpha) * own + alpha * target) / own

    def at_native_slices(self, result: MorphResult) -> LabelVolume:
        """A morph step decoded at its subject's own number of slices: the 32-slice latent path
        resampled along the slices with the atlas's spline, decoded on the subject's affine with
        the morph's slice spacing (its length follows the morph)."""
        geometry = self.atlas.reference(result.subject_id).geometry[result.phase]
        codes = interpolate_codes(result.latent_path, geometry.n_slices).codes
        affine = np.array(geometry.affine, dtype=np.float64)
        affine[:3, 2] *= self.length_scale(
            result.subject_id, result.target_group, result.phase, result.alpha
        )
        return LabelVolume(
            data=decode_codes(self.model, codes, self.device),
            affine=affine,
            name=f"{result.labels.name} at {geometry.n_slices} slices",
        )

    def phenotypes(
        self,
        subject_id: str,
        target_group: str,
        alphas: Sequence[float],
        correlated: bool = True,
        seed: int = 0,
    ) -> list[Phenotypes]:
        """Phenotypes along the morph: ED and ES decoded with the same seed at each alpha."""
        ed = self.series(subject_id, target_group, "ED", alphas, correlated, seed)
        es = self.series(subject_id, target_group, "ES", alphas, correlated, seed)
        return [measure_phenotypes(d.labels, s.labels) for d, s in zip(ed, es, strict=True)]


def morph_pathology(
    model: torch.nn.Module,
    atlas: LatentAtlas,
    nor_subject_id: str,
    target_group: str,
    phase: str,
    alpha: float,
    correlated: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> MorphResult:
    """Morph a reference (NOR) subject towards a target group at one alpha in [0, 1]."""
    return PathologyMorph(model, atlas, device, optimise=False).morph(
        nor_subject_id, target_group, phase, alpha, correlated, seed
    )


def morph_series(
    model: torch.nn.Module,
    atlas: LatentAtlas,
    nor_subject_id: str,
    target_group: str,
    phase: str,
    alphas: Sequence[float],
    correlated: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[MorphResult]:
    """The morph at each of ``alphas`` (e.g. np.linspace(0, 1, N)) with one shared sample."""
    return PathologyMorph(model, atlas, device, optimise=False).series(
        nor_subject_id, target_group, phase, alphas, correlated, seed
    )
