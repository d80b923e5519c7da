"""Warm start: a new CHeart run begins from another CHeart checkpoint's weights."""

from __future__ import annotations

from pathlib import Path

import torch

from cardio_explorer.engine.cheart.network import CHeartNet
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.checkpoint import load_checkpoint


def warm_start(net: CHeartNet, path: str | Path) -> list[str]:
    """Copy a CHeart checkpoint's weights into ``net``; returns the names started at zero.

    A label-decoding checkpoint can start a motion network: its displacement layer, absent from
    the checkpoint, starts at zero, so training starts from frame 0 copied to every frame. A
    motion checkpoint without a motion basis can start one with: the basis keeps its own
    initialisation, whose output layer is zero, so training starts from the old model; so does
    a motion code, whose shift of the LSTM's state starts at zero.
    Anything else that differs is a clear error."""
    checkpoint = load_checkpoint(path, "cheart")
    old = {k[len("net.") :]: v for k, v in checkpoint.tensors.items() if k.startswith("net.")}
    state = net.state_dict()
    zeroed = [k for k in state if k not in old and k.startswith("decoder.displacement.")]
    fresh = {k for k in state if k not in old and k.startswith(("motion_basis.", "motion_code."))}
    missing = sorted(set(state) - set(old) - set(zeroed) - fresh)
    misfit = [k for k, v in state.items() if k in old and old[k].shape != v.shape]
    if missing or misfit:
        raise CardioInputError(
            path,
            "does not fit this network "
            f"({len(missing)} missing, {len(misfit)} of another shape, e.g. "
            f"{(missing + misfit)[0]}); --init-from needs the same grid and layer sizes",
        )
    for name in state:
        if name not in fresh:
            state[name] = torch.zeros_like(state[name]) if name in zeroed else old[name]
    net.load_state_dict(state)
    return zeroed
