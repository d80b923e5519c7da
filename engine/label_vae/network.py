"""2D beta-VAE on one-hot short-axis label slices (the pathology-synthesis label model).

Encoder: ``len(encoder_channels)`` blocks of [conv3x3 stride 2, conv3x3, ...], each conv +
BatchNorm + LeakyReLU, down to C x g x g (g = size / 2**blocks); flatten; fully connected layers
(no activation between them, as the paper); mu and logvar of size nz. Decoder: fully connected
nz -> ... -> C' x g x g; blocks that each double the resolution (one per encoder block unless
``output_stride`` > 1); a head [conv, BatchNorm, conv] to ``n_classes`` logits. Bilinear
upsampling uses align_corners=False (the public code's UpsamplingBilinear2d aligns corners; the
parameter count is the same).

Two presets: ``PAPER`` reproduces the published network (REFERENCE.md, about 29.5 M parameters);
``LEAN`` (the default) keeps the topology family but is sized so that decoding a 32-slice stack
takes well under 60 ms on a 2-core CPU: fewer channels, a stride-2 transposed convolution instead
of bilinear upsampling + a 3x3 convolution, and an output stride of 2 (the decoder stops at
64 x 64 and its logits are bilinearly upsampled to 128 x 128; full-resolution convolutions cost
most of the time on a CPU, and smooth logits at half resolution lose < 0.5 % Dice even on a
2-pixel myocardium).

Tensor shapes: one-hot input [B, n_classes, size, size] float; labels [B, size, size] integer;
latent codes [B, nz]; logits [B, n_classes, size, size].
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional
from torch.nn.utils.fusion import fuse_conv_bn_eval

from cardio_explorer.engine.device import in_fp32
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.label_vae.config import LEAN, PRESETS, LabelVaeConfig
from cardio_explorer.engine.nn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

KIND = "label_vae"
# Weight names in a checkpoint: the model under MODEL_PREFIX; training state (optimizer) under
# other prefixes, which loading a model ignores.
MODEL_PREFIX = "model."
LOGVAR_MIN, LOGVAR_MAX = -12.0, 8.0


class VaeOutput(NamedTuple):
    """Forward pass: logits [B, C, H, W], posterior mean and log-variance [B, nz]."""

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


class LossTerms(NamedTuple):
    """Scalar loss tensors: total = ce + beta * kl, each a per-slice average over the batch."""

    total: torch.Tensor
    ce: torch.Tensor
    kl: torch.Tensor


def _conv_bn_act(cin: int, cout: int, stride: int, slope: float) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(slope, inplace=True),
    ]


def _fc_stack(widths: list[int], activation: bool, slope: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if activation and i < len(widths) - 2:
            layers.append(nn.LeakyReLU(slope, inplace=True))
    return nn.Sequential(*layers)


def _decoder_block(cin: int, cout: int, config: LabelVaeConfig) -> nn.Sequential:
    slope, n_convs = config.leaky_slope, config.decoder_convs_per_block
    layers: list[nn.Module] = []
    if config.upsample == "transposed":
        layers += [
            nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(slope, inplace=True),
        ]
        for _ in range(n_convs):
            layers += _conv_bn_act(cout, cout, 1, slope)
        return nn.Sequential(*layers)
    # The paper's block: upsample, then convs that keep the width until the last one.
    if config.upsample == "bilinear":
        layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
    else:
        layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    for i in range(n_convs):
        layers += _conv_bn_act(cin, cout if i == n_convs - 1 else cin, 1, slope)
    return nn.Sequential(*layers)


class LabelVAE(nn.Module):
    """2D beta-VAE on one-hot label slices; see the module docstring for the topology."""

    def __init__(self, config: LabelVaeConfig = LEAN) -> None:
        super().__init__()
        self.config = config
        c, g, slope = config, config.grid, config.leaky_slope
        blocks = []
        cin = c.n_classes
        for cout in c.encoder_channels:
            layers = _conv_bn_act(cin, cout, 2, slope)
            for _ in range(c.encoder_convs_per_block - 1):
                layers += _conv_bn_act(cout, cout, 1, slope)
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.encoder = nn.Sequential(*blocks)
        flat = c.encoder_channels[-1] * g * g
        self.encoder_fc = _fc_stack([flat, *c.encoder_fc], c.fc_activation, slope)
        width = c.encoder_fc[-1] if c.encoder_fc else flat
        self.to_mu = nn.Linear(width, c.nz)
        self.to_logvar = nn.Linear(width, c.nz)
        self.decoder_fc = _fc_stack(
            [c.nz, *c.decoder_fc, c.decoder_channels[0] * g * g], c.fc_activation, slope
        )
        dec = c.decoder_channels
        self.decoder = nn.Sequential(*(_decoder_block(a, b, c) for a, b in itertools.pairwise(dec)))
        if c.head_channels:
            self.head = nn.Sequential(
                nn.Conv2d(dec[-1], c.head_channels, 3, padding=1),
                nn.BatchNorm2d(c.head_channels),
                nn.Conv2d(c.head_channels, c.n_classes, 3, padding=1),
            )
        else:
            self.head = nn.Sequential(nn.Conv2d(dec[-1], c.n_classes, 3, padding=1))

    def encode(self, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-hot [B, n_classes, size, size] -> (mu, logvar), each [B, nz]."""
        self._check_input(onehot)
        x = self.encoder(onehot.contiguous(memory_format=torch.channels_last))
        h = self.encoder_fc(x.flatten(1))
        # Bounded log-variance: exp() of an unbounded one overflowed the KL mid-training once.
        return self.to_mu(h), self.to_logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes [B, nz] -> logits [B, n_classes, size, size] (channels_last memory)."""
        c = self.config
        if z.ndim != 2 or z.shape[1] != c.nz:
            raise CardioInputError(
                "latent codes", f"expected shape [B, {c.nz}], got {tuple(z.shape)}"
            )
        x = self.decoder_fc(z).view(len(z), c.decoder_channels[0], c.grid, c.grid)
        # channels_last is about 1.8x faster for these convolutions on CPU (HEADLESS.md).
        features = self.head[:-1](self.decoder(x.contiguous(memory_format=torch.channels_last)))
        # The last conv and the upsampling run in fp32 under a bf16 policy: bf16 logits flipped
        # 0.03 % of label voxels (LVEDV off by up to 0.53 mL, RVEDV 0.69 mL on the bundled model);
        # the conv has few channels and fp32 upsampling is faster than bf16 on CPU.
        logits = in_fp32(self.head[-1], features)
        if c.output_stride > 1:
            logits = functional.interpolate(
                logits, scale_factor=c.output_stride, mode="bilinear", align_corners=False
            )
        return logits

    def forward(self, onehot: torch.Tensor) -> VaeOutput:
        """One-hot [B, C, H, W] -> VaeOutput; samples z in training mode, uses mu in eval mode."""
        mu, logvar = self.encode(onehot)
        z = mu
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return VaeOutput(self.decode(z), mu, logvar)

    @torch.inference_mode()
    def decode_labels(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes [B, nz] -> uint8 labels [B, size, size] (argmax; no autograd).

        Call it on a model in eval mode (BatchNorm running statistics); for the fastest CPU path
        use :meth:`for_inference`, which also folds BatchNorm into the convolutions.
        """
        return self.decode(z).argmax(dim=1).to(torch.uint8)

    def loss(self, out: VaeOutput, target: torch.Tensor, beta: float | None = None) -> LossTerms:
        """Cross-entropy summed over pixels, averaged over the batch, plus beta x KL.

        As the paper: ``ce = sum_pixels CE(logits, target) / B`` and
        ``kl = sum_dims KL(N(mu, exp(logvar)) || N(0, I)) / B`` (per-slice KL; the public code's
        KL sums over the batch without dividing, which makes beta depend on the batch size).
        ``target``: integer labels [B, H, W]. ``beta`` defaults to the config's.
        """
        beta = self.config.beta if beta is None else float(beta)
        batch = out.logits.shape[0]
        ce = functional.cross_entropy(out.logits.float(), target.long(), reduction="sum") / batch
        mu, logvar = out.mu.float(), out.logvar.float()
        kl = -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp()) / batch
        return LossTerms(ce + beta * kl, ce, kl)

    def for_inference(self) -> LabelVAE:
        """An eval-only copy with BatchNorm folded into the convolutions, channels_last, no grad.

        Same outputs as this model in eval mode (to float rounding), about 1.3x faster on CPU.
        Do not train or save it: its weights no longer match the checkpoint layout.
        """
        model = copy.deepcopy(self).eval()
        for seq in (*model.encoder, *model.decoder, model.head):
            _fold_batchnorm(seq)
        model.to(memory_format=torch.channels_last)
        model.requires_grad_(False)
        return model

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def _check_input(self, onehot: torch.Tensor) -> None:
        c = self.config
        if onehot.ndim != 4 or tuple(onehot.shape[1:]) != (c.n_classes, c.size, c.size):
            raise CardioInputError(
                "label VAE input",
                f"expected one-hot [B, {c.n_classes}, {c.size}, {c.size}], got "
                f"{tuple(onehot.shape)}",
            )


def _fold_batchnorm(seq: nn.Sequential) -> None:
    """Replace each (conv, BatchNorm) pair in a Sequential by one conv with folded weights."""
    for i in range(len(seq) - 1):
        conv, bn = seq[i], seq[i + 1]
        if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d):
            seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
            seq[i + 1] = nn.Identity()


def build_label_vae(config: LabelVaeConfig | str = LEAN) -> LabelVAE:
    """A freshly initialised label VAE from a config or a preset name ('lean', 'paper')."""
    if isinstance(config, str):
        if config not in PRESETS:
            raise CardioInputError(
                "label VAE config", f"unknown preset {config!r}; expected one of {sorted(PRESETS)}"
            )
        config = PRESETS[config]
    return LabelVAE(config).to(memory_format=torch.channels_last)


def save_label_vae(
    path: str | Path,
    model: LabelVAE,
    config: LabelVaeConfig | None = None,
    extra: Mapping[str, Any] | None = None,
    tensors: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write a label VAE checkpoint: weights under 'model.', extra JSON, optional other tensors.

    ``tensors`` (e.g. optimizer state) must not use the 'model.' prefix.
    """
    config = config or model.config
    if config != model.config:
        raise ValueError("config does not describe the model being saved")
    weights = {MODEL_PREFIX + k: v for k, v in model.state_dict().items()}
    for key in tensors or {}:
        if key.startswith(MODEL_PREFIX):
            raise ValueError(f"extra tensor {key!r} uses the reserved prefix {MODEL_PREFIX!r}")
    weights.update(tensors or {})
    return save_checkpoint(path, KIND, config.to_dict(), weights, dict(extra or {}))


class LoadedLabelVae(NamedTuple):
    """A label VAE in eval mode on its device, and the checkpoint it came from."""

    model: LabelVAE
    checkpoint: Checkpoint


def load_label_vae(
    source: str | Path | Checkpoint, device: torch.device | str = "cpu"
) -> LoadedLabelVae:
    """Load a label VAE checkpoint (a file, or one read already) in eval mode; another kind or
    mismatched weights: clear error."""
    checkpoint = source if isinstance(source, Checkpoint) else load_checkpoint(source, KIND)
    path = checkpoint.path or "checkpoint"
    if checkpoint.kind != KIND:
        raise CardioInputError(path, f"is a {checkpoint.kind} checkpoint, not a {KIND} checkpoint")
    config = LabelVaeConfig.from_dict(checkpoint.config, source=path)
    # The KL weight training used (--beta) is the model's objective; checkpoints written before
    # this kept the preset's in their config.
    trained_beta = checkpoint.extra.get("training", {}).get("options", {}).get("beta")
    if isinstance(trained_beta, int | float) and trained_beta >= 0:
        config = replace(config, beta=float(trained_beta))
    checkpoint.check_fits(lambda: LabelVAE(config), MODEL_PREFIX)
    model = LabelVAE(config)
    checkpoint.load_into(model, MODEL_PREFIX)
    model = model.to(device=torch.device(device), memory_format=torch.channels_last).eval()
    return LoadedLabelVae(model, checkpoint)
