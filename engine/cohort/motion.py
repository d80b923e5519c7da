"""The cardiac cycle of a synthetic heart: volume curve, end-systolic frame, base descent.

Frame 0 is end-diastole. Ejection (after a short isovolumic contraction) reaches end-systole at
35-40 % of the cycle; rapid filling follows, then diastasis and the atrial kick that completes
filling before the next end-diastole.
"""

from __future__ import annotations

import numpy as np

ES_FRACTION = (0.35, 0.40)
_ISOVOLUMIC = 0.03  # share of the cycle before ejection starts
_RAPID_FILLING = 0.22  # share of the cycle the early filling takes
_AFTER_RAPID = 0.25  # share of stroke volume still missing after rapid filling
_AFTER_DIASTASIS = 0.15  # ... and before the atrial kick
_ATRIAL_KICK_START = 0.84


def es_frame_for(n_frames: int, rng: np.random.Generator) -> int:
    """End-systolic frame (0-based) at 35-40 % of the cycle."""
    lo = int(np.ceil(ES_FRACTION[0] * n_frames))
    hi = max(lo, int(np.floor(ES_FRACTION[1] * n_frames)))
    return int(rng.integers(lo, hi + 1))


def ejected_fraction_curve(n_frames: int, es_frame: int) -> np.ndarray:
    """Share of the stroke volume ejected at each frame: 0 at ED (frame 0), 1 at ES only."""
    if not 0 < es_frame < n_frames:
        raise ValueError(f"ES frame {es_frame} outside 1..{n_frames - 1}")
    phase = np.arange(n_frames) / n_frames
    es = es_frame / n_frames
    out = np.empty(n_frames)
    for i, p in enumerate(phase):
        if p <= es:
            x = np.clip((p - _ISOVOLUMIC) / (es - _ISOVOLUMIC), 0.0, 1.0)
            out[i] = np.sin(0.5 * np.pi * x) ** 2
        elif p <= es + _RAPID_FILLING:
            x = (p - es) / _RAPID_FILLING
            out[i] = 1.0 - (1.0 - _AFTER_RAPID) * np.sin(0.5 * np.pi * x)
        elif p <= _ATRIAL_KICK_START:
            x = (p - es - _RAPID_FILLING) / max(_ATRIAL_KICK_START - es - _RAPID_FILLING, 1e-6)
            out[i] = _AFTER_RAPID - (_AFTER_RAPID - _AFTER_DIASTASIS) * x
        else:
            x = (p - _ATRIAL_KICK_START) / (1.0 - _ATRIAL_KICK_START)
            out[i] = _AFTER_DIASTASIS * 0.5 * (1.0 + np.cos(np.pi * x))
    out[0] = 0.0
    out[es_frame] = 1.0
    return out
