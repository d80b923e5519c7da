"""Label VAE architecture configs: the dataclass (JSON round trip) and the PAPER / LEAN presets.

``PAPER`` reproduces the published network (REFERENCE.md, about 29.5 M parameters); ``LEAN`` (the
default) is sized for fast CPU decoding (see engine/label_vae/network.py for the topology).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardio_explorer.engine.errors import CardioInputError

UPSAMPLING = ("bilinear", "nearest", "transposed")


@dataclass(frozen=True)
class LabelVaeConfig:
    """Architecture and loss weight of a label VAE (JSON round trip via to_dict/from_dict).

    upsample: 'bilinear' / 'nearest' (the paper's decoder block: upsample x2, then
    ``decoder_convs_per_block`` convs, the last one changing channels) or 'transposed' (a 2 x 2
    stride-2 transposed conv changes channels while doubling the size, then the convs keep them).
    head_channels: width of the [conv, BN, conv] head; 0 means a single conv to the logits.
    output_stride: 1 (the paper) decodes to full size; 2 or 4 stop the decoder that many times
    smaller and upsample the logits bilinearly (one decoder block fewer per factor 2).
    fc_activation: LeakyReLU between fully connected layers (the paper has none).
    """

    name: str = "lean"
    nz: int = 16
    size: int = 128
    n_classes: int = 4
    encoder_channels: tuple[int, ...] = (16, 32, 64, 64)
    encoder_convs_per_block: int = 3
    encoder_fc: tuple[int, ...] = (256, 256)
    decoder_fc: tuple[int, ...] = (256, 256)
    decoder_channels: tuple[int, ...] = (64, 64, 32, 16)
    decoder_convs_per_block: int = 1
    upsample: str = "transposed"
    head_channels: int = 8
    output_stride: int = 2
    fc_activation: bool = False
    leaky_slope: float = 0.01
    beta: float = 15.0

    def __post_init__(self) -> None:
        for name in ("encoder_channels", "encoder_fc", "decoder_fc", "decoder_channels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        problems = []
        n_blocks = len(self.encoder_channels)
        if n_blocks < 1:
            problems.append("encoder_channels is empty")
        elif self.size % (2**n_blocks):
            problems.append(f"size {self.size} is not divisible by 2**{n_blocks}")
        stride_ok = self.output_stride in {2**k for k in range(n_blocks + 1)}
        if not stride_ok:
            problems.append(
                f"output_stride must be a power of 2 up to 2**{n_blocks}, got {self.output_stride}"
            )
        n_decoder = n_blocks - int(math.log2(self.output_stride)) if stride_ok else n_blocks
        if len(self.decoder_channels) != n_decoder + 1:
            problems.append(
                f"decoder_channels needs {n_decoder + 1} entries (one per decoder block + 1), "
                f"got {len(self.decoder_channels)}"
            )
        positive = {
            "nz": self.nz,
            "size": self.size,
            "n_classes": self.n_classes,
            "encoder_convs_per_block": self.encoder_convs_per_block,
        }
        for key, value in positive.items():
            if value < 1:
                problems.append(f"{key} must be >= 1, got {value}")
        if self.n_classes < 2:
            problems.append(f"n_classes must be >= 2, got {self.n_classes}")
        if self.decoder_convs_per_block < 0 or self.head_channels < 0:
            problems.append("decoder_convs_per_block and head_channels must be >= 0")
        if any(
            c < 1
            for c in self.encoder_channels
            + self.decoder_channels
            + self.encoder_fc
            + self.decoder_fc
        ):
            problems.append("channel and fc widths must be >= 1")
        if self.upsample not in UPSAMPLING:
            problems.append(f"upsample must be one of {UPSAMPLING}, got {self.upsample!r}")
        if self.upsample != "transposed" and self.decoder_convs_per_block < 1:
            problems.append(f"upsample {self.upsample!r} needs decoder_convs_per_block >= 1")
        if not self.beta >= 0:
            problems.append(f"beta must be >= 0, got {self.beta}")
        if problems:
            raise CardioInputError("label VAE config", "; ".join(problems))

    @property
    def grid(self) -> int:
        """Side of the bottleneck feature map (size / 2**blocks)."""
        return self.size // 2 ** len(self.encoder_channels)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str | Path = "label VAE config"
    ) -> LabelVaeConfig:
        """Inverse of :meth:`to_dict`; unknown keys or bad values give a CardioInputError."""
        if not isinstance(data, Mapping):
            raise CardioInputError(
                source, f"config must be a JSON object, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardioInputError(
                source, f"unknown label VAE config keys {unknown}; known keys: {sorted(known)}"
            )
        try:
            return cls(**dict(data))
        except CardioInputError as error:
            raise CardioInputError(source, error.problem) from None
        except (TypeError, ValueError) as error:
            raise CardioInputError(source, f"invalid label VAE config ({error})") from None


PAPER = LabelVaeConfig(
    name="paper",
    encoder_channels=(64, 128, 256, 512),
    decoder_channels=(512, 256, 128, 64, 64),
    decoder_convs_per_block=2,
    upsample="bilinear",
    head_channels=32,
    output_stride=1,
)
LEAN = LabelVaeConfig()
PRESETS: dict[str, LabelVaeConfig] = {"lean": LEAN, "paper": PAPER}
