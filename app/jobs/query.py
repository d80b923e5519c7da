"""One morph query: which subject morphs toward which group, at which phase and alpha, how sampled.

Every morph-shaped request (morph step, phenotype curve, cached path, latent path, NIfTI series,
movie) carries one, made from the app state by :meth:`AppState.morph_query`; the jobs decode
through it instead of passing the six values around one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from cardio_explorer.engine.label_vae.morph import MorphResult, PathologyMorph
    from cardio_explorer.engine.metrics.phenotypes import Phenotypes


@dataclass(frozen=True)
class MorphQuery:
    """Subject, target group, phase, alpha, correlated sampling and seed of one morph."""

    subject_id: str
    target_group: str
    phase: str = "ED"
    alpha: float = 0.5
    correlated: bool = True
    seed: int = 0

    @property
    def other_phase(self) -> str:
        """ES for ED and ED for ES."""
        return "ES" if self.phase == "ED" else "ED"

    def at(self, alpha: float) -> MorphQuery:
        """The same query at another alpha."""
        return replace(self, alpha=float(alpha))

    def decode(
        self, morph: PathologyMorph, phase: str | None = None, alpha: float | None = None
    ) -> MorphResult:
        """``PathologyMorph.morph`` of this query (at another phase or alpha when given)."""
        return morph.morph(
            self.subject_id,
            self.target_group,
            self.phase if phase is None else phase,
            self.alpha if alpha is None else float(alpha),
            self.correlated,
            self.seed,
        )

    def series(
        self, morph: PathologyMorph, phase: str, alphas: Sequence[float]
    ) -> list[MorphResult]:
        """``PathologyMorph.series``: the morph at several alphas of one phase, batched."""
        return morph.series(
            self.subject_id, self.target_group, phase, alphas, self.correlated, self.seed
        )

    def latent_path(self, morph: PathologyMorph, alpha: float) -> np.ndarray:
        """``PathologyMorph.latent_path``: the slice codes of this query at ``alpha``."""
        return morph.latent_path(
            self.subject_id, self.target_group, self.phase, alpha, self.correlated, self.seed
        )

    def phenotypes(self, morph: PathologyMorph, alphas: Sequence[float]) -> list[Phenotypes]:
        """``PathologyMorph.phenotypes`` (ED and ES) at each alpha."""
        return morph.phenotypes(
            self.subject_id, self.target_group, alphas, self.correlated, self.seed
        )
