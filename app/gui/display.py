"""What the views show: the current morph step or the current frame of a sequence (GUI thread).

Controllers hand finished results to :class:`Display`; it draws them on every view at once, so
the 3D view, the slice views, the plots and the latent view always show the same thing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from cardio_explorer.app.gui.controllers.readouts import ReadoutBox
from cardio_explorer.app.jobs.latent import LatentOutput
from cardio_explorer.app.jobs.morph import MorphOutput
from cardio_explorer.app.jobs.sequence import SequenceOutput, SequenceSample
from cardio_explorer.app.jobs.state import AppState
from cardio_explorer.engine.volume import ImageVolume, LabelVolume
from cardio_explorer.viewer.heart_view import HeartView, slice_plane
from cardio_explorer.viewer.latent_view import LatentView
from cardio_explorer.viewer.plots import PhenotypeAlphaView, SweepView, VolumeCurveView
from cardio_explorer.viewer.slice_view import LongAxisView, SliceView
from cardio_explorer.viewer.surfaces import Surfaces, surfaces_from_meshes


@dataclass
class Views:
    """The drawing widgets of the main window."""

    heart: HeartView
    slice: SliceView
    long_axis: LongAxisView
    latent: LatentView
    alpha_curve: PhenotypeAlphaView
    volume_curve: VolumeCurveView
    sweep: SweepView
    readouts: ReadoutBox


class Display:
    """Draws morph steps and sequence frames on all views; remembers what is on screen."""

    def __init__(self, views: Views, state: AppState) -> None:
        self.views = views
        self.state = state
        self.scene: str | None = None  # "morph" or "sequence"
        self.morph: MorphOutput | None = None
        self.morph_id: int | None = None
        self.sequence: SequenceOutput | None = None
        self.sequence_id: int | None = None
        self.latent: LatentOutput | None = None
        # request ids drawn, in order (tests check staleness); bounded: playback draws 25/s
        self.drawn_ids: deque[int] = deque(maxlen=10_000)
        self.frames_shown = 0
        self._clip = False
        # each scene keeps its own camera: a morph and a generated heart lie in other places
        self._cameras: dict[str, dict] = {}
        self._camera_action: str | dict | None = None
        views.slice.slice_changed.connect(self._on_slice_changed)
        views.long_axis.slice_clicked.connect(views.slice.set_slice)

    # morph ----------------------------------------------------------------------------------
    def show_morph(self, output: MorphOutput, request_id: int, context: bool = True) -> None:
        """Draw one morph step on every view (read-outs once they are in); ``context=False``
        (playback) keeps the latent cohort and moves only its current point."""
        if output.complete and self.morph_id == request_id and self.scene == "morph":
            self.morph = output  # the same step's read-outs: nothing else to redraw
            self._show_morph_readouts(output)
            return
        self.morph, self.morph_id = output, request_id
        self._enter("morph")
        if not self.drawn_ids or self.drawn_ids[-1] != request_id:
            self.drawn_ids.append(request_id)
        self._draw(
            surfaces_from_meshes(output.meshes), output.image_labels or output.labels, output.image
        )
        self._show_morph_readouts(output)
        self.views.alpha_curve.set_alpha(self.state.alpha)
        if context:
            self._draw_latent()
        elif self.latent is not None:
            self.views.latent.set_current(self.latent.point_at(self.state.alpha))

    def _show_morph_readouts(self, output: MorphOutput) -> None:
        # a first (partial) result has no read-outs yet: grey the old ones out, never pass
        # them off as this step's
        if output.phenotypes is None:
            self.views.readouts.set_pending(True)
        else:
            self.views.readouts.show_values(output.phenotypes.as_dict())

    def set_latent(self, output: LatentOutput) -> None:
        """New cohort embedding and morph path for the latent view."""
        self.latent = output
        self.views.latent.set_status("")
        if self.scene != "sequence":
            self._draw_latent()

    def update_alpha(self, alpha: float) -> None:
        """Move the alpha markers at once (the decoded step follows from the worker)."""
        self.views.alpha_curve.set_alpha(alpha)
        if self.scene != "sequence" and self.latent is not None:
            self.views.latent.set_current(self.latent.point_at(alpha))

    def _draw_latent(self) -> None:
        latent = self.latent
        view = self.views.latent
        if latent is None:
            return
        view.set_cohort(latent.points, latent.groups, latent.ids)
        view.set_axis_labels(*latent.axis_names)
        view.set_path(latent.path)
        view.set_current(latent.point_at(self.state.alpha))

    # sequence -------------------------------------------------------------------------------
    @property
    def sample(self) -> SequenceSample | None:
        """The sequence sample on screen (state.sample_index, clamped)."""
        if self.sequence is None:
            return None
        index = min(self.state.sample_index, len(self.sequence.samples) - 1)
        return self.sequence.samples[index]

    def show_sequence(self, output: SequenceOutput, request_id: int) -> None:
        """Make a sequence the scene: curves, trajectories, then the current frame."""
        self.sequence, self.sequence_id = output, request_id
        self.drawn_ids.append(request_id)
        self._enter("sequence")
        self._draw_sequence_context()
        self.show_frame(self.state.frame)

    def _draw_sequence_context(self) -> None:
        sample, output = self.sample, self.sequence
        if sample is None or output is None:
            return
        self.views.readouts.show_values(sample.phenotypes)
        self.views.volume_curve.set_curves(
            sample.volumes["lv"],
            sample.volumes["rv"],
            ed_frame=0,
            es_frame=sample.es_frame,
            frame_duration_ms=sample.labels.frame_duration_ms,
        )
        traj = output.trajectories
        n, t = traj.shape[:2]
        ids = [f"sample {i + 1} frame {f + 1}" for i in range(n) for f in range(t)]
        groups = [f"sample {i + 1}" for i in range(n) for _ in range(t)]
        view = self.views.latent
        view.set_cohort(traj.reshape(-1, 2), groups, ids)
        view.set_axis_labels("PC 1 (CHeart)", "PC 2 (CHeart)")
        index = min(self.state.sample_index, n - 1)
        view.set_path(traj[index])

    def show_sample(self) -> None:
        """Redraw after the shown sample changed."""
        if self.scene == "sequence":
            self._draw_sequence_context()
            self.show_frame(self.state.frame)

    def show_frame(self, frame: int) -> None:
        """Show frame ``frame`` of the current sample on every view (surfaces only swapped)."""
        sample = self.sample
        if self.scene != "sequence" or sample is None:
            return
        t = int(np.clip(frame, 0, sample.labels.n_frames - 1))
        image = sample.image.frame(t) if sample.image is not None else None
        labels = (sample.image_labels or sample.labels).frame(t)
        self._draw(surfaces_from_meshes(sample.meshes[t]), labels, image)
        self.views.volume_curve.set_frame(t)
        assert self.sequence is not None
        index = min(self.state.sample_index, len(self.sequence.samples) - 1)
        self.views.latent.set_current(self.sequence.trajectories[index, t])
        self.frames_shown += 1

    # scene switching ------------------------------------------------------------------------
    def activate(self, scene: str) -> None:
        """Show the last result of a scene again (tab switch); nothing if there is none."""
        if scene == self.scene:
            return
        if scene == "morph" and self.morph is not None:
            self._enter("morph")
            output = self.morph
            self._draw(
                surfaces_from_meshes(output.meshes),
                output.image_labels or output.labels,
                output.image,
            )
            self._show_morph_readouts(output)
            self._draw_latent()
        elif scene == "sequence" and self.sequence is not None:
            self._enter("sequence")
            self._draw_sequence_context()
            self.show_frame(self.state.frame)

    def _enter(self, scene: str) -> None:
        """Make ``scene`` current; the next draw restores its camera (or frames it anew)."""
        if self.scene == scene:
            return
        if self.scene is not None:
            self._cameras[self.scene] = self.views.heart.camera()
        self.scene = scene
        self._camera_action = self._cameras.get(scene, "reset")

    def remember_camera(self, scene: str, camera: dict) -> None:
        """Use this camera for a scene (sessions); at once when the scene is on screen."""
        self._cameras[scene] = camera
        if self.scene == scene:
            self.views.heart.set_camera(camera)

    # what is on screen ----------------------------------------------------------------------
    def current_labels(self) -> LabelVolume | None:
        """The 3D labels on screen (morph step or current frame)."""
        if self.scene == "morph" and self.morph is not None:
            return self.morph.labels
        sample = self.sample
        if self.scene == "sequence" and sample is not None:
            return sample.labels.frame(min(self.state.frame, sample.labels.n_frames - 1))
        return None

    def current_image(self) -> ImageVolume | None:
        """The synthesised image on screen, if any."""
        if self.scene == "morph" and self.morph is not None:
            return self.morph.image
        sample = self.sample
        if self.scene == "sequence" and sample is not None and sample.image is not None:
            return sample.image.frame(min(self.state.frame, sample.labels.n_frames - 1))
        return None

    def current_surfaces(self) -> Surfaces | None:
        """The surfaces on screen."""
        if self.scene == "morph" and self.morph is not None:
            return surfaces_from_meshes(self.morph.meshes)
        sample = self.sample
        if self.scene == "sequence" and sample is not None:
            t = min(self.state.frame, len(sample.meshes) - 1)
            return surfaces_from_meshes(sample.meshes[t])
        return None

    # clip plane -----------------------------------------------------------------------------
    def set_clip(self, enabled: bool) -> None:
        """Cut the 3D view at the short-axis slice shown in the slice view."""
        self._clip = bool(enabled)
        self._apply_clip()

    def _on_slice_changed(self, index: int) -> None:
        self.views.long_axis.set_slice_marker(index)
        self._apply_clip()

    def _apply_clip(self) -> None:
        labels = self.current_labels()
        if not self._clip or labels is None:
            self.views.heart.set_clip_plane(None)
            return
        # the slice index counts on the slice view's grid, which may be the image's
        shown = self.views.slice
        volume = labels
        if shown.n_slices and shown.n_slices != labels.spatial_shape[0]:
            return
        self.views.heart.set_clip_plane(slice_plane(volume, shown.slice_index))

    # drawing --------------------------------------------------------------------------------
    def _draw(self, surfaces: Surfaces, labels: LabelVolume, image: ImageVolume | None) -> None:
        action, self._camera_action = self._camera_action, None
        self.views.heart.set_heart_axes(labels)
        self.views.heart.show_surfaces(surfaces, reset_camera=action == "reset")
        if isinstance(action, dict):
            self.views.heart.set_camera(action)
        self.views.slice.set_volumes(labels, image)
        self.views.long_axis.set_volumes(labels, image)
        self.views.long_axis.set_slice_marker(self.views.slice.slice_index)
        if self._clip:
            self._apply_clip()
