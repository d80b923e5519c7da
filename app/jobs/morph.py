"""Engine work for the pathology panel, run on the worker thread: requests in, results out.

Each request is a frozen dataclass (its ``lane`` tells the worker which older request it
supersedes); each job function takes the request and ``is_current`` and returns a result or a
generator (stepped between other lanes' requests). Nothing here touches a widget or VTK: meshes are
extracted here by the ``mesher`` the window passes in, drawn on the GUI thread.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cardio_explorer.app.jobs.models import Engines
from cardio_explorer.app.jobs.protocol import IsCurrent, Mesher, Partial
from cardio_explorer.app.jobs.query import MorphQuery
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.frame import to_source_grid
from cardio_explorer.engine.io.cohort import read_cohort
from cardio_explorer.engine.io.nifti import write_label_table, write_label_volume
from cardio_explorer.engine.io.safe_paths import check_safe_id, child_path
from cardio_explorer.engine.label_vae.encoding import encode_subject
from cardio_explorer.engine.label_vae.morph import PathologyMorph
from cardio_explorer.engine.labels import FILES_HOLD_ACDC_VALUES as ACDC
from cardio_explorer.engine.limits import MAX_STEPS
from cardio_explorer.engine.metrics.phenotypes import Phenotypes, measure_phenotypes
from cardio_explorer.engine.preprocess import (
    DEFAULT_SPACING_MM,
    crop_or_pad,
    preprocess_subject,
    resample_inplane,
)
from cardio_explorer.engine.spade.inference import StyleSpec, synthesise_images
from cardio_explorer.engine.subject import Subject
from cardio_explorer.engine.volume import ImageVolume, LabelVolume
from cardio_explorer.viewer.mesh import Mesh

CURVE_ALPHAS = tuple(float(a) for a in np.linspace(0.0, 1.0, 6))
PATH_ALPHAS = tuple(float(a) for a in np.linspace(0.0, 1.0, 11))


def require(engines: Engines, kind: str) -> Any:
    """The loaded model of ``kind``; a CardioInputError with the slot's message otherwise."""
    slot = engines.slot(kind)
    if not slot.ready:
        raise CardioInputError(kind.replace("_", " "), slot.message or "no model loaded")
    return slot.model


def images_for(engines: Engines, labels: LabelVolume, seed: int) -> ImageVolume:
    """SPADE image of labels (3D or 3D+t), on the labels' grid when the generator fits it,
    else on the generator's grid (1.5 mm in-plane, cropped around the heart)."""

    spade = require(engines, "spade")
    return synthesise_images(spade, spade_grid(engines, labels), StyleSpec(seed=int(seed)))


def spade_grid(engines: Engines, labels: LabelVolume) -> LabelVolume:
    """Labels resampled and cropped onto the SPADE generator's in-plane grid (when needed)."""

    size = require(engines, "spade").config.image_size
    _, sy, sx = labels.spacing_zyx
    if labels.spatial_shape[1:] == (size, size) and np.allclose((sy, sx), DEFAULT_SPACING_MM):
        return labels
    return crop_or_pad(resample_inplane(labels, DEFAULT_SPACING_MM), size=size)


# morph ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MorphRequest:
    """Decode the morph at one alpha (ED and ES), extract the shown phase's surfaces."""

    request_id: int
    engines: Engines
    query: MorphQuery
    show_image: bool = False
    smoothing: int = 10
    lane: ClassVar[str] = "morph"
    show_stale: ClassVar[bool] = True  # a decode overtaken by a newer one is still drawn


@dataclass(frozen=True, eq=False)
class MorphOutput:
    """What the views draw for one morph step; ``phenotypes`` is None in the first (partial)
    result, which carries the shown phase and its surfaces only."""

    labels: LabelVolume  # the shown phase
    latent_path: np.ndarray  # (n_slices, nz) codes of the shown phase
    meshes: dict[int, Mesh]  # numpy: made on the worker, turned into VTK on the GUI thread
    image: ImageVolume | None
    image_labels: LabelVolume | None  # labels on the image's grid (None: same as labels)
    inference_ms: float
    surface_ms: float
    ed: LabelVolume | None = None
    es: LabelVolume | None = None
    phenotypes: Phenotypes | None = None

    @property
    def complete(self) -> bool:
        """True once the read-outs (both phases) are in."""
        return self.phenotypes is not None


def readout_phenotypes(ed: LabelVolume, es: LabelVolume) -> Phenotypes:
    """The read-outs of :func:`measure_phenotypes` (same formulas) without the slow maximum
    wall thickness, which the window does not show (NaN here)."""
    return measure_phenotypes(ed, es, wall=False)


def run_morph(request: MorphRequest, is_current: IsCurrent, mesher: Mesher) -> Iterator[Partial]:
    """Shown phase + surfaces (+ SPADE image) first, as a Partial; then the other phase and
    the read-outs. During a drag a newer request replaces the job after its first stage,
    whose Partial is still drawn (without the slow image), so a drag shows steps."""
    morph = require(request.engines, "label_vae")
    query = request.query
    start = time.perf_counter()
    shown = query.decode(morph)
    inference_ms = (time.perf_counter() - start) * 1000.0
    start = time.perf_counter()
    meshes = mesher(shown.labels, request.smoothing)
    surface_ms = (time.perf_counter() - start) * 1000.0
    image = image_labels = None
    if request.show_image and request.engines.spade is not None and is_current(request):
        image = images_for(request.engines, shown.labels, query.seed)
        grid_labels = spade_grid(request.engines, shown.labels)
        image_labels = None if grid_labels is shown.labels else grid_labels
    first = MorphOutput(
        shown.labels,
        np.asarray(shown.latent_path),
        meshes,
        image,
        image_labels,
        inference_ms,
        surface_ms,
    )
    yield Partial(first)
    start = time.perf_counter()
    other = query.decode(morph, phase=query.other_phase).labels
    ed, es = (shown.labels, other) if query.phase == "ED" else (other, shown.labels)
    return replace(
        first,
        ed=ed,
        es=es,
        phenotypes=readout_phenotypes(ed, es),
        inference_ms=inference_ms + (time.perf_counter() - start) * 1000.0,
    )


# phenotype vs alpha -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CurveRequest:
    """Phenotypes along the whole morph (ED and ES at each alpha; the query's own phase and
    alpha are not used)."""

    request_id: int
    engines: Engines
    query: MorphQuery
    alphas: tuple[float, ...] = CURVE_ALPHAS
    lane: ClassVar[str] = "curve"


@dataclass(frozen=True)
class CurveOutput:
    """Phenotypes at each alpha of a morph."""

    alphas: tuple[float, ...]
    phenotypes: tuple[Phenotypes, ...]


def run_curve(request: CurveRequest, is_current: IsCurrent) -> Iterator[str]:
    """One alpha per step, so slider requests run in between."""
    morph = require(request.engines, "label_vae")
    values = []
    for i, alpha in enumerate(request.alphas):
        values.extend(request.query.phenotypes(morph, [alpha]))
        yield f"phenotype curve {i + 1}/{len(request.alphas)}"
    return CurveOutput(request.alphas, tuple(values))


# loaded cohort ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CohortRequest:
    """Read, preprocess and encode a cohort folder: its subjects become morph sources."""

    request_id: int
    engines: Engines
    folder: Path
    lane: ClassVar[str] = "cohort"


@dataclass(frozen=True, eq=False)
class CohortOutput:
    """A new morph engine whose references are the cohort's subjects, and the subjects."""

    morph: PathologyMorph
    subjects: dict[str, Subject]
    folder: Path
    notes: tuple[str, ...] = field(default_factory=tuple)


def run_cohort(request: CohortRequest, is_current: IsCurrent) -> Iterator[str]:
    """One subject per step."""

    morph = require(request.engines, "label_vae")
    subjects = read_cohort(request.folder)
    if not subjects:
        raise CardioInputError(request.folder, "holds no subject")
    yield f"read {len(subjects)} subjects"
    size = morph.model.config.size
    references, prepared, notes, sources = [], {}, [], {}
    for i, subject in enumerate(subjects):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ready = preprocess_subject(subject, size=size, frame=morph.frame)
        notes.extend(str(w.message) for w in caught)
        ref, _ = encode_subject(morph.model, ready, morph.device, morph.atlas.n_slices)
        references.append(replace(ref, group=ref.group or "NOR"))
        prepared[ready.subject_id] = ready
        for phase, frame in (("ED", ready.ed_frame), ("ES", ready.es_frame)):
            if frame in ready.labels and ready.labels[frame].source_grid is not None:
                sources[(ready.subject_id, phase)] = ready.labels[frame].source_grid
        yield f"encoded {i + 1}/{len(subjects)} subjects"
    atlas = morph.atlas.with_references(references)
    new_morph = PathologyMorph(
        morph.model, atlas, morph.device, optimise=False, sources=sources, frame=morph.frame
    )
    return CohortOutput(new_morph, prepared, Path(request.folder), tuple(notes))


def on_source_grid(labels: LabelVolume) -> LabelVolume:
    """Labels on the grid of the user's file they were made from, when known (else as is)."""

    return labels if labels.source_grid is None else to_source_grid(labels)


# morph path export ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesRequest:
    """Decode the morph at ``n_steps`` alphas (0 to 1; the query's alpha is not used) and write
    each step as NIfTI into a folder."""

    request_id: int
    engines: Engines
    query: MorphQuery
    n_steps: int
    folder: Path
    lane: ClassVar[str] = "export"


def run_series(request: SeriesRequest, is_current: IsCurrent) -> Iterator[str]:
    """Writes <subject>_<target>_<phase>_step<NN>_alpha<AAA>.nii.gz and a label table."""
    if not 2 <= request.n_steps <= MAX_STEPS:
        raise CardioInputError(
            "steps", f"the morph path needs 2 to {MAX_STEPS} steps, got {request.n_steps}"
        )
    query = request.query
    check_safe_id(query.subject_id, "subject id")  # it names the files
    morph = require(request.engines, "label_vae")
    folder = Path(request.folder)
    folder.mkdir(parents=True, exist_ok=True)
    alphas = np.linspace(0.0, 1.0, request.n_steps)
    written = []
    for i, alpha in enumerate(alphas):
        step = query.decode(morph, alpha=alpha)
        name = (
            f"{query.subject_id}_{query.target_group}_{query.phase}"
            f"_step{i:02d}_alpha{round(100 * alpha):03d}.nii.gz"
        )
        path = child_path(folder, name)
        written.append(write_label_volume(on_source_grid(step.labels), path, acdc_labels=ACDC))
        yield f"wrote {i + 1}/{len(alphas)} morph steps"
    written.append(write_label_table(folder / "labels.txt", acdc_labels=ACDC))
    return tuple(written)
