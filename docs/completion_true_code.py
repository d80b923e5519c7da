"""Completion Dice with the prior's motion code against each heart's true code (issue 19).

Usage: python docs/completion_true_code.py COHORT [--checkpoint resources/cheart.safetensors]
[--n 60]. Completes each cohort heart's ED frame twice, calibrated as `evaluate cheart` does:
with the motion code its prior reads from the ED frame (the default) and with the code measured
on the heart's own sequence (how far its LV and RV contract: an oracle). The difference is
what the ED frame cannot tell; what the oracle still misses is where the decoder puts the walls.
Prints the mean Dice over the frames, per structure, and the LVESV MAE of each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from cardio_explorer.engine.cheart.data import load_sequences
from cardio_explorer.engine.cheart.inference import decode_from_z, encode_ed
from cardio_explorer.engine.cheart.model import load_model
from cardio_explorer.engine.cheart.motion_code import sequence_motion_codes
from cardio_explorer.engine.labels import Label
from cardio_explorer.engine.metrics.overlap import dice_scores
from cardio_explorer.engine.volume import LabelVolume


def _sequence_dice(predicted: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Mean over frames of the [LV, MYO, RV] Dice."""
    return np.mean([dice_scores(p, r) for p, r in zip(predicted, real, strict=True)], axis=0)


def _smallest_lv(sequence: np.ndarray) -> int:
    return int((sequence == Label.LV).reshape(len(sequence), -1).sum(axis=1).min())


def main() -> None:
    """Print the two completions' figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cohort", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=Path("resources/cheart.safetensors"))
    parser.add_argument("--n", type=int, default=60, help="hearts (the first N)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    config = model.config
    sequences = load_sequences(args.cohort, config.grid, config.spacing, config.n_frames)
    n = min(args.n, len(sequences.labels))
    true_codes = sequence_motion_codes(sequences.labels[:n])
    dice: dict[str, list[np.ndarray]] = {"prior's code": [], "true code": [], "ED copied": []}
    lv_error: dict[str, list[int]] = {"prior's code": [], "true code": []}
    for i in range(n):
        real = sequences.labels[i]
        ed = LabelVolume(data=real[0], affine=sequences.affines[i])
        mu, _ = encode_ed(model, ed, sequences.conditions[i])
        for name, codes in (("prior's code", None), ("true code", true_codes[i : i + 1])):
            completed = decode_from_z(
                model, mu[None], [sequences.conditions[i]], real[:1], motion_codes=codes
            )[0][0]
            dice[name].append(_sequence_dice(completed, real))
            lv_error[name].append(abs(_smallest_lv(completed) - _smallest_lv(real)))
        dice["ED copied"].append(_sequence_dice(np.repeat(real[:1], len(real), axis=0), real))
    voxel_ml = float(np.prod(config.spacing)) / 1000.0
    print(f"{args.cohort.name}, {n} hearts\n")
    print("| completion | Dice LV / MYO / RV | mean | LVESV MAE, mL |")
    print("|---|---|---|---|")
    for name, values in dice.items():
        per = np.mean(values, axis=0)
        error = f"{np.mean(lv_error[name]) * voxel_ml:.1f}" if name in lv_error else "-"
        lv, myo, rv = (f"{v:.3f}" for v in per)
        print(f"| {name} | {lv} / {myo} / {rv} | {per.mean():.3f} | {error} |")


if __name__ == "__main__":
    main()
