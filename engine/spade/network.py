"""SPADE label-to-image networks: style encoder, generator, multi-scale patch discriminator.

Written here rather than wrapping MONAI's ``SPADENet``: MONAI's net has no head/middle blocks,
no conv7x7 + ResNet style encoder, no spectral norm and no tanh output, so it cannot express the
paper configuration; it also mutates the ``channels`` list it is given and builds its random
style on ``seg.get_device()``, which fails on CPU. Owning the ~300 lines lets the lean
configuration drop work at full resolution (labels reach the last stage space-to-depth and the
image leaves it depth-to-space) and lets inference strip spectral norm.

Shapes: labels are one-hot (B, n_labels, H, W) float; images (B, 1, H, W) in [-1, 1]; style
codes (B, z_dim). The param-free normalisation is BatchNorm as in NVlabs' SPADE (synchronised BN
there): in eval mode it is a fixed per-channel affine, so a slice's output depends only on its
own labels and style, and a local label change gives a local image change (morphs keep their
appearance), which InstanceNorm's per-slice statistics would not.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import Checkpoint, load_checkpoint
from cardio_explorer.engine.nn.onehot import one_hot
from cardio_explorer.engine.spade.config import SpadeConfig


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return spectral_norm(module) if enabled else module


class LabelPyramid:
    """One-hot labels resampled to each generator resolution, computed once per forward."""

    def __init__(self, onehot: torch.Tensor, shuffle: int) -> None:
        self.onehot = onehot
        self.shuffle = shuffle
        self._cache: dict[int, torch.Tensor] = {}

    def at(self, size: int) -> torch.Tensor:
        """Labels for a feature map of side ``size`` (space-to-depth at the last stage)."""
        if size not in self._cache:
            full = self.onehot.shape[-1]
            if self.shuffle > 1 and size * self.shuffle == full:
                self._cache[size] = functional.pixel_unshuffle(self.onehot, self.shuffle)
            else:
                self._cache[size] = functional.interpolate(
                    self.onehot, size=(size, size), mode="nearest"
                )
        return self._cache[size]


class SpadeNorm(nn.Module):
    """Param-free BatchNorm modulated per pixel by gamma/beta predicted from the labels.

    ``fold()`` (inference) merges the eval-mode BatchNorm and the ``1 +`` into the gamma/beta
    convs, so the whole norm becomes ``x * G(labels) + B(labels)``: one pass over memory.
    """

    def __init__(
        self, channels: int, label_channels: int, hidden: int, config: SpadeConfig
    ) -> None:
        super().__init__()
        k = config.spade_kernel
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.shared = (
            None
            if config.share_label_features
            else nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        )
        # two convs, not one with 2C outputs: halves of a channels_last tensor are strided views
        # and slow every elementwise op after them
        self.gamma = nn.Conv2d(hidden, channels, k, padding=k // 2)
        self.beta = nn.Conv2d(hidden, channels, k, padding=k // 2)
        self.folded = False

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor, features: torch.Tensor | None
    ) -> torch.Tensor:
        """x (B, C, h, w); labels (B, L, h, w); features: shared label features or None."""
        actv = self.shared(labels) if self.shared is not None else features
        if self.folded:
            return torch.addcmul(self.beta(actv), x, self.gamma(actv))
        return self.norm(x) * (1 + self.gamma(actv)) + self.beta(actv)

    @torch.no_grad()
    def fold(self) -> None:
        """Merge eval BatchNorm into gamma/beta: BN(x)(1+g)+b == x*G + B (inference only)."""
        if self.folded:
            return
        scale = torch.rsqrt(self.norm.running_var + self.norm.eps)
        shift = -self.norm.running_mean * scale
        w_g, b_g = self.gamma.weight.clone(), self.gamma.bias + 1
        self.beta.weight += shift[:, None, None, None] * w_g
        self.beta.bias += shift * b_g
        self.gamma.weight.copy_(scale[:, None, None, None] * w_g)
        self.gamma.bias.copy_(scale * b_g)
        self.folded = True


class SpadeResBlock(nn.Module):
    """SPADE ResNet block: (SPADE, LReLU, conv) x 2 plus a learned shortcut when C changes."""

    def __init__(self, c_in: int, c_out: int, label_channels: int, config: SpadeConfig) -> None:
        super().__init__()
        c_mid = min(c_in, c_out)
        self.learned_shortcut = c_in != c_out
        hidden = config.spade_hidden
        self.features = None
        if config.share_label_features:
            hidden = min(hidden, c_out)
            self.features = nn.Sequential(
                nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU(inplace=True)
            )
        self.norm_0 = SpadeNorm(c_in, label_channels, hidden, config)
        self.conv_0 = _sn(nn.Conv2d(c_in, c_mid, 3, padding=1), config.spectral)
        self.norm_1 = SpadeNorm(c_mid, label_channels, hidden, config)
        self.conv_1 = _sn(nn.Conv2d(c_mid, c_out, 3, padding=1), config.spectral)
        if self.learned_shortcut:
            self.norm_s = SpadeNorm(c_in, label_channels, hidden, config)
            self.conv_s = _sn(nn.Conv2d(c_in, c_out, 1, bias=False), config.spectral)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """x (B, c_in, h, w), labels (B, L, h, w) -> (B, c_out, h, w)."""
        feats = self.features(labels) if self.features is not None else None
        shortcut = self.conv_s(self.norm_s(x, labels, feats)) if self.learned_shortcut else x
        dx = self.conv_0(functional.leaky_relu(self.norm_0(x, labels, feats), 0.2, inplace=True))
        dx = self.conv_1(functional.leaky_relu(self.norm_1(dx, labels, feats), 0.2, inplace=True))
        return dx.add_(shortcut)


class SpadeGenerator(nn.Module):
    """Style code (B, z_dim) + one-hot labels (B, L, H, W) -> image (B, 1, H, W) in [-1, 1]."""

    def __init__(self, config: SpadeConfig) -> None:
        super().__init__()
        self.config = config
        c0, s0 = config.base_channels, config.init_size
        self.fc = nn.Linear(config.z_dim, c0 * s0 * s0)
        shuffle = config.out_shuffle
        n_up = len(config.up_channels)

        def label_ch(stage: int) -> int:  # the last stage sees labels space-to-depth
            return config.n_labels * shuffle**2 if stage == n_up else config.n_labels

        self.head = SpadeResBlock(c0, c0, label_ch(0), config)
        self.middle = nn.ModuleList(
            SpadeResBlock(c0, c0, label_ch(0), config) for _ in range(config.n_middle)
        )
        chans = (c0, *config.up_channels)
        reduce = config.reduce_before_upsample
        self.reduce = nn.ModuleList(
            _sn(nn.Conv2d(chans[i], chans[i + 1], 1), config.spectral)
            if reduce and chans[i] != chans[i + 1]
            else nn.Identity()
            for i in range(n_up)
        )
        self.up = nn.ModuleList(
            SpadeResBlock(
                chans[i + 1] if reduce else chans[i], chans[i + 1], label_ch(i + 1), config
            )
            for i in range(n_up)
        )
        self.to_image = nn.Conv2d(chans[-1], shuffle**2, 3, padding=1)

    def forward(self, onehot: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """onehot (B, L, H, W) float, z (B, z_dim) -> (B, 1, H, W)."""
        cfg = self.config
        pyramid = LabelPyramid(onehot, cfg.out_shuffle)
        x = self.fc(z).view(-1, cfg.base_channels, cfg.init_size, cfg.init_size)
        x = self.head(x, pyramid.at(cfg.init_size))
        for block in self.middle:
            x = block(x, pyramid.at(cfg.init_size))
        for reduce, block in zip(self.reduce, self.up, strict=True):
            x = functional.interpolate(reduce(x), scale_factor=2, mode="nearest")
            x = block(x, pyramid.at(x.shape[-1]))
        x = self.to_image(functional.leaky_relu(x, 0.2))
        if cfg.out_shuffle > 1:
            x = functional.pixel_shuffle(x, cfg.out_shuffle)
        return torch.tanh(x)


class StyleCode(NamedTuple):
    """Posterior of the style code: mean and log-variance, each (B, z_dim)."""

    mu: torch.Tensor
    logvar: torch.Tensor


class _ResBlock(nn.Module):
    def __init__(self, channels: int, spectral: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _sn(nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"), spectral),
            nn.InstanceNorm2d(channels),
            nn.LeakyReLU(0.2),
            _sn(nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"), spectral),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StyleEncoder(nn.Module):
    """Image (B, 1, H, W) -> StyleCode: conv7x7, 4 stride-2 convs, ResNet blocks, FC mu/logvar."""

    def __init__(self, config: SpadeConfig) -> None:
        super().__init__()
        sn = config.spectral
        chans = [min(config.enc_base * 2**i, config.enc_max) for i in range(5)]
        layers: list[nn.Module] = [
            _sn(nn.Conv2d(1, chans[0], 7, padding=3, padding_mode="reflect"), sn),
            nn.InstanceNorm2d(chans[0]),
            nn.LeakyReLU(0.2),
        ]
        for i in range(4):
            layers += [
                _sn(nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1), sn),
                nn.InstanceNorm2d(chans[i + 1]),
                nn.LeakyReLU(0.2),
            ]
        layers += [_ResBlock(chans[-1], sn) for _ in range(config.enc_res_blocks)]
        self.body = nn.Sequential(*layers)
        flat = chans[-1] * (config.image_size // 16) ** 2
        self.fc_mu = nn.Linear(flat, config.z_dim)
        self.fc_logvar = nn.Linear(flat, config.z_dim)

    def forward(self, image: torch.Tensor) -> StyleCode:
        """image (B, 1, H, W) -> StyleCode(mu, logvar), each (B, z_dim)."""
        h = self.body(image).flatten(1)
        return StyleCode(self.fc_mu(h), self.fc_logvar(h))


class PatchDiscriminator(nn.Module):
    """PatchGAN on label + image: 4x4 convs, returns every layer's output (last = logits)."""

    def __init__(self, config: SpadeConfig) -> None:
        super().__init__()
        sn, nf = config.spectral, config.ndf
        layers = [nn.Sequential(nn.Conv2d(config.n_labels + 1, nf, 4, 2, 2), nn.LeakyReLU(0.2))]
        for i in range(1, config.d_layers):
            prev, nf = nf, min(nf * 2, 512)
            stride = 1 if i == config.d_layers - 1 else 2
            layers.append(
                nn.Sequential(
                    _sn(nn.Conv2d(prev, nf, 4, stride, 2), sn),
                    nn.InstanceNorm2d(nf),
                    nn.LeakyReLU(0.2),
                )
            )
        layers.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, L + 1, H, W) -> outputs of each layer."""
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs


class MultiScaleDiscriminator(nn.Module):
    """``d_scales`` patch discriminators on the input and its 2x, 4x ... downsamplings."""

    def __init__(self, config: SpadeConfig) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(config) for _ in range(config.d_scales))

    def forward(self, onehot: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale, the features of every layer (the last one is the real/fake logit map)."""
        x = torch.cat([onehot, image], dim=1)
        results = []
        for i, disc in enumerate(self.scales):
            if i:
                x = functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(disc(x))
        return results


class SpadeModel(nn.Module):
    """Style encoder + generator (+ discriminator when training), with their config."""

    def __init__(self, config: SpadeConfig, with_discriminator: bool = True) -> None:
        super().__init__()
        self.config = config
        self.encoder = StyleEncoder(config)
        self.generator = SpadeGenerator(config)
        self.discriminator = MultiScaleDiscriminator(config) if with_discriminator else None

    def encode(self, image: torch.Tensor) -> StyleCode:
        """Images (B, 1, H, W) -> style posterior."""
        return self.encoder(image)

    def synthesise(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Integer labels (B, H, W) + style codes (B, z_dim) -> images (B, H, W)."""
        onehot = one_hot(labels, self.config.n_labels)
        if labels.device.type == "cpu":
            onehot = onehot.contiguous(memory_format=torch.channels_last)
        return self.generator(onehot, z)[:, 0]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def strip_spectral_norm(module: nn.Module) -> nn.Module:
    """Fold every spectral-norm parametrisation into a plain weight (inference only)."""
    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
    return module


def prepare_for_inference(model: SpadeModel, device: torch.device | str = "cpu") -> SpadeModel:
    """Eval mode, spectral norm folded, no gradients, channels_last on CPU, on ``device``."""
    device = torch.device(device)
    model.discriminator = None
    strip_spectral_norm(model).eval().requires_grad_(False)
    for sub in model.modules():
        if isinstance(sub, SpadeNorm):
            sub.fold()
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model


def load_spade(
    source: str | Path | Checkpoint, device: torch.device | str = "cpu", *, inference: bool = True
) -> SpadeModel:
    """SPADE model from a checkpoint file (or loaded Checkpoint); inference-ready by default."""
    ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source, "spade")
    if ckpt.kind != "spade":
        raise CardioInputError(ckpt.path or "checkpoint", f"is a {ckpt.kind} checkpoint, not spade")
    config = ckpt.parse_config(SpadeConfig.from_json)
    ckpt.check_fits(lambda: SpadeModel(config, with_discriminator=False))
    has_d = any(k.startswith("discriminator.") for k in ckpt.tensors)
    model = SpadeModel(config, with_discriminator=has_d and not inference)
    prefixes = ("encoder.", "generator.") + (("discriminator.",) if model.discriminator else ())
    for prefix in prefixes:
        ckpt.load_into(getattr(model, prefix[:-1]), prefix)
    if inference:
        return prepare_for_inference(model, device)
    return model.to(device)


def model_tensors(model: SpadeModel) -> dict[str, torch.Tensor]:
    """All weights and buffers by checkpoint name (encoder., generator., discriminator.)."""
    if any(isinstance(m, SpadeNorm) and m.folded for m in model.modules()):
        raise ValueError("an inference-prepared (folded) SPADE model cannot be saved")
    return dict(model.state_dict())
