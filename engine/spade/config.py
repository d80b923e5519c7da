"""SPADE architecture configs: the dataclass (stored in checkpoints), the PAPER / LEAN presets,
and how a --config argument (preset name, JSON file or dict) becomes a config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.config_files import read_config


@dataclass(frozen=True)
class SpadeConfig:
    """Architecture of the three SPADE networks (JSON-able; stored in checkpoints).

    The generator starts at ``image_size / (2 ** len(up_channels) * out_shuffle)`` with
    ``base_channels``, runs a head block and ``n_middle`` blocks there, then one upsample + block
    per entry of ``up_channels``. Lean options: ``share_label_features`` computes the label
    features once per block (hidden width capped at the block's width) instead of once per norm;
    ``reduce_before_upsample`` changes the width by a 1x1 conv before upsampling, so no norm runs
    at the wide width at the higher resolution; ``out_shuffle`` > 1 runs the last stage below
    full resolution and restores it by depth-to-space (labels enter it space-to-depth).
    """

    image_size: int = 128
    n_labels: int = 4
    z_dim: int = 256
    # generator
    base_channels: int = 512
    n_middle: int = 1
    up_channels: tuple[int, ...] = (256, 128, 64, 32)
    spade_hidden: int = 128
    spade_kernel: int = 3
    share_label_features: bool = False
    reduce_before_upsample: bool = False
    out_shuffle: int = 1
    # style encoder
    enc_base: int = 32
    enc_max: int = 512
    enc_res_blocks: int = 2
    # discriminator (sees label + image)
    ndf: int = 64
    d_layers: int = 4
    d_scales: int = 2
    spectral: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "up_channels", tuple(int(c) for c in self.up_channels))
        what = "SPADE config"
        if self.n_labels < 2 or self.z_dim < 1 or not self.up_channels:
            raise CardioInputError(what, "needs n_labels >= 2, z_dim >= 1 and up_channels")
        if self.out_shuffle not in (1, 2, 4):
            raise CardioInputError(what, f"out_shuffle must be 1, 2 or 4, got {self.out_shuffle}")
        step = 2 ** len(self.up_channels) * self.out_shuffle
        if self.image_size % 16 or self.image_size % step:
            raise CardioInputError(
                what,
                f"image_size {self.image_size} must be a multiple of 16 and of "
                f"2^{len(self.up_channels)} x {self.out_shuffle} (upsamplings x out_shuffle)",
            )
        if self.spade_kernel not in (1, 3):
            raise CardioInputError(what, f"spade_kernel must be 1 or 3, got {self.spade_kernel}")

    @property
    def init_size(self) -> int:
        """Side of the generator's first feature map."""
        return self.image_size // (2 ** len(self.up_channels) * self.out_shuffle)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for checkpoints."""
        out = asdict(self)
        out["up_channels"] = list(self.up_channels)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpadeConfig:
        """Config from a dict; unknown keys are a clear error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardioInputError(
                "SPADE config", f"unknown keys {unknown}; known: {sorted(known)}"
            )
        try:
            return cls(**data)
        except TypeError as error:
            raise CardioInputError("SPADE config", str(error)) from None


# The published configuration (REFERENCE.md): ngf 32, 512 x 8 x 8 start, SPADE hidden 128.
PAPER = SpadeConfig()

# Sized for <= 300 ms per 32-slice 128 x 128 stack on a 2-core CPU (130-150 ms measured, quiet):
# narrower, label features shared within a block, widths changed before upsampling, and the
# last stage at 64 x 64 (labels in by space-to-depth, image out by depth-to-space) because one
# 3x3 conv over 32 slices at 128 x 128 with 16-32 channels costs ~200 ms on its own there.
LEAN = SpadeConfig(
    z_dim=64,
    base_channels=128,
    n_middle=1,
    up_channels=(64, 32, 16),
    spade_hidden=32,
    spade_kernel=3,
    share_label_features=True,
    reduce_before_upsample=True,
    out_shuffle=2,
    enc_base=16,
    enc_max=128,
    enc_res_blocks=1,
    ndf=32,
)

CONFIGS = {"paper": PAPER, "lean": LEAN}


def resolve_config(spec: str | Path | dict[str, Any] | SpadeConfig) -> SpadeConfig:
    """'lean' / 'paper', a JSON file (optionally ``{"base": "lean", ...overrides}``), or a dict."""
    if isinstance(spec, SpadeConfig):
        return spec
    return read_config(
        spec, CONFIGS, SpadeConfig.to_json, lambda data, _: SpadeConfig.from_json(data)
    )


def with_image_size(config: SpadeConfig, image_size: int) -> SpadeConfig:
    """The same architecture for another image size (tests use 32 x 32)."""
    return replace(config, image_size=image_size)
