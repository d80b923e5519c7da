"""A CHeart model ready for inference: network, condition statistics, grid and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cardio_explorer import resources
from cardio_explorer.engine.cheart.conditions import ConditionStats
from cardio_explorer.engine.cheart.config import N_CONDITIONS, CHeartConfig
from cardio_explorer.engine.cheart.data import DEFAULT_FRAME_DURATION_MS, grid_affine
from cardio_explorer.engine.cheart.network import CHeartNet, load_cheart, save_cheart
from cardio_explorer.engine.cheart.prior import LatentPrior
from cardio_explorer.engine.device import choose_device
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.frame import TYPICAL_PATIENT_FROM_FRAME
from cardio_explorer.engine.nn.checkpoint import Checkpoint

TRAIN_HINT = (
    "train one with `cardio-explorer cohort --n 200 --geometry dense --out COHORT` and "
    "`cardio-explorer train cheart --data COHORT --out resources/cheart.safetensors` "
    "(or another --out, then pass it as --checkpoint); see the README"
)


@dataclass
class CHeartModel:
    """Network (eval mode, on ``device``) plus what inference needs from its checkpoint."""

    net: CHeartNet
    stats: ConditionStats
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    frame_duration_ms: float = DEFAULT_FRAME_DURATION_MS
    training: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""
    prior: LatentPrior | None = None  # fitted p(z0 | c); None samples z0 ~ N(0, I)

    @property
    def config(self) -> CHeartConfig:
        """Architecture of the network."""
        return self.net.config

    def grid_affine(self, centre_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
        """Affine of the model grid centred on ``centre_xyz`` (generated hearts: the origin), its
        axes placed in a patient as a typical short-axis acquisition places them: the grid holds
        true anatomy, which an axis-aligned header would declare ACDC's mirror convention."""
        direction = TYPICAL_PATIENT_FROM_FRAME[:3, :3]
        return grid_affine(self.config.grid, self.config.spacing, centre_xyz, direction)

    def extra(self) -> dict[str, Any]:
        """The checkpoint ``extra`` that rebuilds this model."""
        extra = {
            "conditions": self.stats.to_dict(),
            "frame_duration_ms": self.frame_duration_ms,
            "training": self.training,
        }
        if self.prior is not None:
            extra["latent_prior"] = self.prior.to_dict()
        return extra

    def save(self, path: str | Path) -> Path:
        """Write the model as a ``cheart`` checkpoint."""
        return save_cheart(path, self.net, self.extra())


def prepare_for_inference(net: CHeartNet, device: torch.device) -> CHeartNet:
    """Eval mode on ``device``; channels-last 3D so the final argmax reads contiguous labels."""
    return net.eval().to(device=device, memory_format=torch.channels_last_3d)


def load_model(
    path: str | Path | Checkpoint | None = None, device: str | torch.device = "cpu"
) -> CHeartModel:
    """Load a CHeart checkpoint (default: the bundled one; or one read already) for inference
    on ``device``."""
    if isinstance(path, Checkpoint):
        checkpoint = path
        return _model_of(load_cheart(checkpoint), checkpoint.path or Path("checkpoint"), device)
    if path is None:
        path = resources.bundled_checkpoint("cheart")
        if not path.is_file():
            raise CardioInputError(path, f"no bundled CHeart model yet; {TRAIN_HINT}")
    path = Path(path)
    if not path.is_file():
        raise CardioInputError(path, f"checkpoint file not found; {TRAIN_HINT}")
    return _model_of(load_cheart(path), path, device)


def _model_of(
    loaded: tuple[CHeartNet, Checkpoint], path: Path, device: str | torch.device
) -> CHeartModel:
    """The inference model of a rebuilt network and its checkpoint's extra state."""
    net, checkpoint = loaded
    if "conditions" not in checkpoint.extra:
        raise CardioInputError(path, "checkpoint lacks the condition statistics")
    device = device if isinstance(device, torch.device) else choose_device(device)
    try:
        stats = ConditionStats.from_dict(checkpoint.extra["conditions"])
        frame_ms = float(checkpoint.extra.get("frame_duration_ms", DEFAULT_FRAME_DURATION_MS))
        training = dict(checkpoint.extra.get("training", {}))
    except CardioInputError as error:
        raise CardioInputError(path, error.problem) from None
    except (TypeError, ValueError, AttributeError) as error:
        raise CardioInputError(path, f"malformed checkpoint extra ({error})") from None
    if not 1.0 <= frame_ms <= 10_000.0:
        raise CardioInputError(path, f"frame duration {frame_ms:g} ms is not 1-10000 ms")
    return CHeartModel(
        net=prepare_for_inference(net, device),
        stats=stats,
        device=device,
        frame_duration_ms=frame_ms,
        training=training,
        path=path,
        sha256=checkpoint.sha256,
        prior=_read_prior(checkpoint.extra, net.config, path),
    )


def _read_prior(extra: dict[str, Any], config: CHeartConfig, path: Path) -> LatentPrior | None:
    if "latent_prior" not in extra:
        return None
    try:
        return LatentPrior.from_dict(extra["latent_prior"], config.z_dim, N_CONDITIONS)
    except CardioInputError as error:
        raise CardioInputError(path, str(error)) from None
