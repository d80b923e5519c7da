"""CHeart architecture configs and training defaults, and the PAPER / LEAN / TINY presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from cardio_explorer.engine.errors import CardioInputError

N_CONDITIONS = 5  # age, sex, height, weight, SBP (normalised by engine/cheart/conditions.py)


@dataclass(frozen=True)
class CHeartConfig:
    """Architecture and training defaults; ``grid`` and ``spacing`` are in array order (z, y, x).

    encoder_channels: outputs of the stride-2 Conv3d blocks (the input has n_labels channels).
    decoder_channels: inputs of the stride-2 ConvTranspose3d blocks; the first is the channel
    count of the reshaped Linear output, the last block outputs n_labels logits.
    condition_encoder: also feed the condition code to the encoder's mu/logvar heads (as the
    public code does), so that z is pushed to hold what the conditions do not explain.
    motion: frames after the first are frame 0 warped by decoded displacement fields (see the
    module docstring); motion_smoothness weighs the mean squared displacement gradient (voxels).
    motion_dice: with motion, weight of a soft Dice loss on the moved frames (1 - mean soft Dice
    of LV, myocardium and RV over frames): each structure counts by its own size, where the
    voxel-wise likelihood lets the 97 % of voxels that never change label outvote the cavity
    (README, issue 19); 0 (older checkpoints): likelihood alone.
    motion_basis: with motion, add this many displacement fields computed from frame 0 itself
    and mixed per frame (engine/cheart/motion.py ``MotionBasis``); 0 (older checkpoints): the
    latent-only head alone.
    motion_code: with motion, the motion also reads how far the heart contracts (LV and RV
    log(ESV / EDV)): the training sequence's own in training, drawn from a learned prior
    p(m | z0, c) in generation (engine/cheart/motion_code.py); False (older checkpoints):
    motion is a deterministic function of z0 and the conditions. motion_code_beta weighs the
    prior's negative log-likelihood (only the prior's own weights read it).
    """

    grid: tuple[int, int, int] = (32, 64, 64)
    spacing: tuple[float, float, float] = (4.0, 2.5, 2.5)
    n_frames: int = 20
    n_labels: int = 4
    z_dim: int = 32
    condition_code: int = 32
    condition_hidden: int = 64
    lstm_hidden: int = 128
    encoder_channels: tuple[int, ...] = (16, 32, 64, 64)
    decoder_channels: tuple[int, ...] = (64, 32, 16, 16)
    condition_encoder: bool = True
    motion: bool = False
    motion_smoothness: float = 0.01
    motion_dice: float = 0.0
    motion_basis: int = 0
    motion_code: bool = False
    motion_code_beta: float = 1e-3
    beta: float = 1e-3
    lr: float = 5e-4
    batch_size: int = 8

    def __post_init__(self) -> None:
        for name in ("grid", "spacing", "encoder_channels", "decoder_channels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        levels = len(self.encoder_channels)
        problems = []
        if len(self.grid) != 3 or len(self.spacing) != 3:
            problems.append("grid and spacing need 3 values (z, y, x)")
        elif any(int(g) % (2**levels) or int(g) < 2**levels for g in self.grid):
            problems.append(f"every grid size must be a multiple of {2**levels} ({levels} levels)")
        if len(self.decoder_channels) != levels:
            problems.append("encoder and decoder need the same number of levels")
        if self.n_frames < 2:
            problems.append("n_frames must be at least 2")
        if any(s <= 0 for s in self.spacing):
            problems.append("spacing must be positive")
        if self.motion_basis < 0 or (self.motion_basis and not self.motion):
            problems.append("motion_basis must be >= 0, and needs motion")
        if self.motion_code and not self.motion:
            problems.append("motion_code needs motion")
        if self.motion_smoothness < 0 or self.motion_dice < 0 or self.motion_code_beta < 0:
            problems.append("motion_smoothness, motion_dice and motion_code_beta must be >= 0")
        if problems:
            raise CardioInputError("CHeart config", "; ".join(problems))

    @property
    def bottleneck_shape(self) -> tuple[int, int, int]:
        """(D, H, W) after the encoder's stride-2 blocks."""
        f = 2 ** len(self.encoder_channels)
        return (self.grid[0] // f, self.grid[1] // f, self.grid[2] // f)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CHeartConfig:
        """Config from a dict; unknown keys are a clear error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardioInputError("CHeart config", f"unknown keys {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def with_changes(self, **changes: Any) -> CHeartConfig:
        """Copy with some fields changed."""
        return replace(self, **changes)


# The paper: 4 x 64 x 128 x 128 input (2 mm deep, 1.25 mm in-plane), 8192-wide bottleneck.
PAPER = CHeartConfig(
    grid=(64, 128, 128),
    spacing=(2.0, 1.25, 1.25),
    encoder_channels=(8, 16, 32, 32),
    decoder_channels=(32, 16, 8, 4),
    lstm_hidden=64,
)
# Bundled CPU model: 32 x 64 x 64 at 4 x 2.5 x 2.5 mm (same field of view as the paper),
# motion decoding with displacement fields placed by frame 0 and a motion code (issue 19).
LEAN = CHeartConfig(motion=True, motion_basis=8, motion_code=True)
# The same without the motion code: the bundled model of session 8 and the stage the motion
# code is warm-started from (see the README's reproduce line).
LEAN_BASIS = CHeartConfig(motion=True, motion_basis=8)
# Motion decoding by the decoder's own displacement head alone: session 5's model, the stage the
# motion basis is warm-started from.
LEAN_MOTION = CHeartConfig(motion=True)
# The same grid decoding every frame's labels, as the paper does; the bundled model's first
# stage, which the motion model is warm-started from (see the README's reproduce line).
LEAN_LABELS = CHeartConfig()
# Smoke tests and demos: 16^3 voxels of 8 mm, 6 frames, two levels, a few channels.
TINY = CHeartConfig(
    grid=(16, 16, 16),
    spacing=(8.0, 8.0, 8.0),
    n_frames=6,
    z_dim=8,
    condition_code=8,
    condition_hidden=16,
    lstm_hidden=16,
    encoder_channels=(4, 8),
    decoder_channels=(8, 4),
    batch_size=4,
)
CONFIGS = {
    "paper": PAPER,
    "lean": LEAN,
    "lean-basis": LEAN_BASIS,
    "lean-motion": LEAN_MOTION,
    "lean-labels": LEAN_LABELS,
    "tiny": TINY,
}
