"""CHeart: conditional 3D beta-VAE with an autoregressive LSTM that unrolls a 3D+t label sequence.

Shapes (B batch, T frames, C labels, D/H/W the model grid in array order z/y/x):
ED one-hot [B, C, D, H, W] -> encoder -> mu, logvar [B, z]; conditions [B, 5] -> condition MLP
-> code [B, k]; the LSTM starts from z (frame 0) and each later step takes the *previous* latent
and the code (one-to-many, as the paper describes; the public code fed the same z every step);
all T latents go through one decoder shared across frames as a single batch of B*T volumes.

Motion decoding (``config.motion``, the bundled model): the decoder also outputs a displacement
field per frame, and frame t is frame 0 warped by it (trilinear resampling of its one-hot). Frame
0 is the given ED in completion and the decoded frame 0 in generation, so a completed sequence
keeps the anatomy it was given and every frame keeps frame 0's topology. The paper decodes the
labels of every frame independently; see the README, "Where we differ".

With a motion code (``config.motion_code``, engine/cheart/motion_code.py) the motion also reads
how far this heart contracts: the sequence's own LV and RV log(ESV / EDV) in training, a draw
from the learned prior p(m | z0, c) in generation, its mean in completion.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from cardio_explorer.engine.cheart.boxed import boxed_frames
from cardio_explorer.engine.cheart.config import N_CONDITIONS, CHeartConfig
from cardio_explorer.engine.cheart.motion import (
    DISPLACEMENT_VOXELS,
    MotionBasis,
    MovedFrames,
    enclose_lv,
    move_first_frame,
)
from cardio_explorer.engine.cheart.motion_code import (
    MotionCode,
    gaussian_nll,
    motion_descriptors,
)
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cardio_explorer.engine.nn.onehot import one_hot


class CHeartOutput(NamedTuple):
    """mu and logvar [B, z], latents [B, T, z] and the frames: without motion ``logits``
    [B, T, C, D, H, W]; with motion the decoded frame-0 logits [B, C, D, H, W], the frame-0
    labels the displacements moved ``source`` [B, D, H, W] (the given ED in completion), the
    displacements of frames 1.. [B, T - 1, 3, D, H, W] (voxels, array order z, y, x; None from
    ``generate``, which computes them inside the boxes only) and the moved frames
    (``MovedFrames``); ``motion_nll``: in training, the motion-code prior's NLL of the
    sequence's code."""

    logits: torch.Tensor | None
    mu: torch.Tensor
    logvar: torch.Tensor
    latents: torch.Tensor
    frame0_logits: torch.Tensor | None = None
    source: torch.Tensor | None = None
    displacement: torch.Tensor | None = None
    moved: MovedFrames | None = None
    motion_nll: torch.Tensor | None = None

    def labels(self) -> torch.Tensor:
        """Most probable label of every frame, uint8 [B, T, D, H, W]."""
        if self.moved is None:
            return self.logits.argmax(dim=2).to(torch.uint8)
        return torch.cat([self.source.to(torch.uint8)[:, None], self.moved.labels()], dim=1)


class ConditionMLP(nn.Module):
    """Normalised conditions [B, 5] -> condition code [B, k]."""

    def __init__(self, n_in: int, hidden: int, code: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, code), nn.Tanh()
        )

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        """Condition code in [-1, 1]."""
        return self.net(conditions)


class Encoder3d(nn.Module):
    """One-hot ED [B, C, D, H, W] -> (mu, logvar) [B, z], optionally given the condition code."""

    def __init__(self, config: CHeartConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = config.n_labels
        for out in config.encoder_channels:
            layers += [
                nn.Conv3d(channels, out, kernel_size=4, stride=2, padding=1),
                nn.BatchNorm3d(out),
                nn.LeakyReLU(0.2),
            ]
            channels = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        width = channels * math.prod(config.bottleneck_shape)
        width += config.condition_code if config.condition_encoder else 0
        self.uses_code = config.condition_encoder
        self.mu = nn.Linear(width, config.z_dim)
        self.logvar = nn.Linear(width, config.z_dim)

    def forward(
        self, onehot: torch.Tensor, code: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance."""
        h = self.features(onehot)
        if self.uses_code:
            h = torch.cat([h, code], dim=1)
        return self.mu(h), self.logvar(h)


class TemporalLSTM(nn.Module):
    """One-to-many LSTM: latent t = latent t-1 + f(LSTM([latent t-1, code]))."""

    def __init__(self, z_dim: int, code: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.initial_state = nn.Linear(z_dim + code, 2 * hidden)
        self.cell = nn.LSTMCell(z_dim + code, hidden)
        self.to_step = nn.Linear(hidden, z_dim)

    def step(
        self,
        previous: torch.Tensor,
        code: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Next latent from the previous one; returns (latent, (h, c))."""
        h, c = self.cell(torch.cat([previous, code], dim=1), state)
        # Residual update: the next frame is the previous shape plus a learned change.
        return previous + self.to_step(h), (h, c)

    def forward(
        self,
        z0: torch.Tensor,
        code: torch.Tensor,
        n_frames: int,
        shift: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Latents [B, T, z] with latents[:, 0] = z0; ``shift`` [B, 2 * hidden] moves the
        initial state's pre-activations (a motion code's)."""
        start = self.initial_state(torch.cat([z0, code], dim=1))
        if shift is not None:
            start = start + shift.to(start.dtype)
        h, c = torch.tanh(start).chunk(2, dim=1)
        state = (h.contiguous(), c.contiguous())
        latents = [z0]
        previous = z0
        for _ in range(1, n_frames):
            previous, state = self.step(previous, code, state)
            latents.append(previous)
        return torch.stack(latents, dim=1)


class Decoder3d(nn.Module):
    """[latent, code] [N, z + k] -> label logits [N, C, D, H, W]; shared by all frames. With
    motion a second last layer (``displacement``) reads the same features."""

    def __init__(self, config: CHeartConfig) -> None:
        super().__init__()
        channels = config.decoder_channels
        self.start = (channels[0], *config.bottleneck_shape)
        self.fc = nn.Linear(config.z_dim + config.condition_code, math.prod(self.start))
        layers: list[nn.Module] = []
        outs = (*channels[1:], config.n_labels)
        for i, (cin, cout) in enumerate(zip(channels, outs, strict=True)):
            layers.append(nn.ConvTranspose3d(cin, cout, kernel_size=4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers += [nn.BatchNorm3d(cout), nn.LeakyReLU(0.2)]
        self.blocks = nn.Sequential(*layers)
        self.displacement = None
        if config.motion:
            self.displacement = nn.ConvTranspose3d(
                channels[-1], 3, kernel_size=4, stride=2, padding=1
            )
            # Training starts from no motion (frame 0 copied to every frame, a strong floor),
            # never from random displacements that scramble the moved frames.
            nn.init.zeros_(self.displacement.weight)
            nn.init.zeros_(self.displacement.bias)

    def forward(self, latent_and_code: torch.Tensor) -> torch.Tensor:
        """Logits of N volumes."""
        return self.blocks[-1](self.features(latent_and_code))

    def features(self, latent_and_code: torch.Tensor) -> torch.Tensor:
        """What the last layers read, [N, channels, D/2, H/2, W/2]."""
        h = self.fc(latent_and_code).view(-1, *self.start)
        return self.blocks[:-1](h)


class CHeartNet(nn.Module):
    """The whole network; see the module docstring for shapes."""

    def __init__(self, config: CHeartConfig) -> None:
        super().__init__()
        self.config = config
        self.conditions = ConditionMLP(N_CONDITIONS, config.condition_hidden, config.condition_code)
        self.encoder = Encoder3d(config)
        self.temporal = TemporalLSTM(config.z_dim, config.condition_code, config.lstm_hidden)
        self.decoder = Decoder3d(config)
        self.motion_basis = None
        if config.motion_basis:
            width = config.z_dim + config.condition_code
            self.motion_basis = MotionBasis(config.n_labels, width, config.motion_basis)
        self.motion_code = None
        if config.motion_code:
            self.motion_code = MotionCode(
                config.z_dim, config.condition_code, config.lstm_hidden, config.n_frames
            )

    def encode(
        self, ed: torch.Tensor, conditions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ED labels [B, D, H, W] (integer) or one-hot [B, C, D, H, W] -> (mu, logvar)."""
        onehot = one_hot(ed, self.config.n_labels) if ed.dim() == 4 else ed
        return self.encoder(onehot, self.conditions(conditions))

    def unroll(
        self,
        z0: torch.Tensor,
        conditions: torch.Tensor,
        n_frames: int | None = None,
        motion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Latents [B, T, z] of a sequence starting from z0 [B, z] (and motion code [B, m])."""
        code = self.conditions(conditions)
        if motion is None or self.motion_code is None:
            return self.temporal(z0, code, n_frames or self.config.n_frames)
        shift = self.motion_code.state_shift(motion)
        latents = self.temporal(z0, code, n_frames or self.config.n_frames, shift)
        offsets = self.motion_code.latent_offsets(motion, latents.shape[1] - 1)
        return torch.cat([latents[:, :1], latents[:, 1:] + offsets.to(latents.dtype)], dim=1)

    def motion_of(
        self,
        z0: torch.Tensor,
        conditions: torch.Tensor,
        sequence: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        code: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(motion code [B, 2] or None without one, the prior's NLL of it or None): ``code``
        when given (drawn elsewhere: a group's motion prior), the sequence's own descriptors
        when its labels [B, T, D, H, W] are given (training), else the prior p(m | z0, c): its
        mean, or mean + std x ``noise`` [B, 2] (generation)."""
        if self.motion_code is None:
            return None, None
        if code is not None:
            return code.float().to(z0.device), None
        # The prior only predicts: its gradient must not reshape z0 or the condition code.
        code = self.conditions(conditions).detach()
        mu_p, logvar_p = self.motion_code.prior_of(z0.detach(), code)
        if sequence is None:
            if noise is None:
                return mu_p, None
            return mu_p + noise.to(mu_p) * torch.exp(0.5 * logvar_p), None
        m = motion_descriptors(sequence)
        return m, gaussian_nll(m, mu_p, logvar_p)

    def decode(self, latents: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """Latents [B, T, z] -> label logits [B, T, C, D, H, W], all frames as one decoder
        batch."""
        b, t, _ = latents.shape
        logits = self.decoder(self.decoder_input(latents, conditions))
        return logits.view(b, t, *logits.shape[1:])

    def decoder_input(self, latents: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """Latents [B, T, z] -> decoder inputs [B * T, z + k]: every frame's latent beside its
        sequence's condition code."""
        b, t, _ = latents.shape
        code = self.conditions(conditions)
        code = code[:, None, :].expand(b, t, code.shape[1])
        return torch.cat([latents, code], dim=2).reshape(b * t, -1)

    def _output(
        self,
        latents: torch.Tensor,
        conditions: torch.Tensor,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        source: torch.Tensor | None,
        boxed: bool = False,
        motion: torch.Tensor | None = None,
    ) -> CHeartOutput:
        if not self.config.motion:
            return CHeartOutput(self.decode(latents, conditions), mu, logvar, latents)
        b, t, _ = latents.shape
        inputs = self.decoder_input(latents, conditions)
        gains = None
        if motion is not None and self.motion_code is not None:
            gains = self.motion_code.displacement_gains(motion, t - 1)  # [B, T - 1]
        if boxed:  # generation: the same frames, computed where they can differ from background
            frame0_logits, source, moved = boxed_frames(self, inputs, b, t, source, gains)
            return CHeartOutput(None, mu, logvar, latents, frame0_logits, source, None, moved)
        h = self.decoder.features(inputs)
        h = h.view(b, t, *h.shape[1:])
        # Labels only for frame 0, displacements only for the later frames.
        frame0_logits = self.decoder.blocks[-1](h[:, 0])
        if source is None:  # generation: warp the decoded frame 0, its LV closed
            source = enclose_lv(frame0_logits.argmax(dim=1))
        elif source.dim() == 5:
            source = source.argmax(dim=1)
        first = one_hot(source, self.config.n_labels)
        displacement = self.decoder.displacement(h[:, 1:].reshape(b * (t - 1), *h.shape[2:]))
        displacement = displacement.float().view(b, t - 1, 3, *displacement.shape[2:])
        if self.motion_basis is not None:
            later = inputs.view(b, t, -1)[:, 1:]
            displacement = displacement + self.motion_basis(first, later)
        displacement = displacement * DISPLACEMENT_VOXELS
        if gains is not None:
            displacement = displacement * gains[:, :, None, None, None, None]
        moved = move_first_frame(first, displacement)
        return CHeartOutput(None, mu, logvar, latents, frame0_logits, source, displacement, moved)

    def generate(
        self,
        z0: torch.Tensor,
        conditions: torch.Tensor,
        n_frames: int | None = None,
        source: torch.Tensor | None = None,
        boxed: bool = True,
        motion_noise: torch.Tensor | None = None,
        motion_code: torch.Tensor | None = None,
    ) -> CHeartOutput:
        """Sequence from a given frame-0 latent (prior sample or posterior mean); with motion,
        ``source`` (labels [B, D, H, W] on the grid) is the frame the displacements move, by
        default the decoded frame 0. ``boxed``: compute the displacements inside each heart's
        box only (``displacement`` is then None; the moved frames are the full-grid path's).
        ``motion_noise`` [B, m]: a motion code drawn from its prior (None: the prior's mean);
        ``motion_code`` [B, m]: the code itself (drawn from a group's motion prior)."""
        # fp32 even under bf16 autocast: casting the LSTM's weights to bf16 at each of the
        # 19 steps cost more than these [B, 64] products (1.4 ms against 0.5 ms per sequence).
        with torch.autocast(z0.device.type, enabled=False):
            z0, conditions = z0.float(), conditions.float()
            motion, _ = self.motion_of(z0, conditions, noise=motion_noise, code=motion_code)
            latents = self.unroll(z0, conditions, n_frames, motion)
        zeros = torch.zeros_like(z0)
        return self._output(latents, conditions, z0, zeros, source, boxed, motion)

    def forward(
        self,
        ed: torch.Tensor,
        conditions: torch.Tensor,
        sample: bool | None = None,
        sequence: torch.Tensor | None = None,
    ) -> CHeartOutput:
        """Encode the ED frame, unroll T latents, decode them; samples z in training mode.
        With motion the given ED frame is the one the displacements move; with a motion code
        the whole ``sequence`` [B, T, D, H, W] (training) gives it, else its prior's mean."""
        mu, logvar = self.encode(ed, conditions)
        sample = self.training if sample is None else sample
        z0 = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        motion, motion_nll = self.motion_of(z0, conditions, sequence)
        latents = self.unroll(z0, conditions, motion=motion)
        output = self._output(latents, conditions, mu, logvar, ed, motion=motion)
        return output._replace(motion_nll=motion_nll)


def parameter_count(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def save_cheart(
    path: str | Path,
    net: CHeartNet,
    extra: dict[str, Any] | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a ``cheart`` checkpoint: weights under ``net.``, optional extra tensors beside."""
    weights = {f"net.{k}": v for k, v in net.state_dict().items()}
    weights.update(tensors or {})
    return save_checkpoint(path, "cheart", net.config.to_dict(), weights, extra)


def load_cheart(source: str | Path | Checkpoint) -> tuple[CHeartNet, Checkpoint]:
    """Rebuild the network from a ``cheart`` checkpoint, a file or one read already (eval, CPU)."""
    checkpoint = source if isinstance(source, Checkpoint) else load_checkpoint(source, "cheart")
    if checkpoint.kind != "cheart":
        where = checkpoint.path or "checkpoint"
        raise CardioInputError(where, f"is a {checkpoint.kind} checkpoint, not a cheart checkpoint")
    config = checkpoint.parse_config(CHeartConfig.from_dict)
    checkpoint.check_fits(lambda: CHeartNet(config), "net.")
    net = CHeartNet(config)
    checkpoint.load_into(net, prefix="net.")
    return net.eval(), checkpoint
