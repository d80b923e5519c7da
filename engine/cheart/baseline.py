"""PCA baseline for sequence completion (the CHeart paper's strongest baseline).

PCA of the flattened one-hot training sequences (LV, MYO, RV channels of all frames); a new
sequence is completed from its ED frame by least squares of the principal components' ED part
against the ED frame, then the full reconstruction is read out by argmax (background scores
1 - the sum of the three channels).

The sequences are far too long to hold components explicitly (3 x 20 x D x H x W features),
so everything runs in the N x N space of training sequences: the centred Gram matrix
G = Xc Xc^T = U L U^T gives components V = Xc^T U L^-1/2, the least-squares normal equations
become (A^T G_ed A) c = A^T Xc_ed y with A = U L^-1/2, and the reconstruction is
mean + Xc^T (A c): a weighted sum of the training sequences. Exact, and memory of N sequences.
"""

from __future__ import annotations

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.labels import STRUCTURES

_VALUES = tuple(int(v) for v in STRUCTURES.values())  # LV, MYO, RV
_CHUNK = 1 << 15  # voxels per Gram block


def _one_hot(labels: np.ndarray) -> np.ndarray:
    """uint8 labels [..., V] -> float32 [..., 3, V] indicators of LV, MYO, RV."""
    return np.stack([(labels == s) for s in _VALUES], axis=-2).astype(np.float32)


class PCABaseline:
    """Fit on training sequences [N, T, D, H, W]; complete a sequence from its ED frame."""

    def __init__(self, n_components: int | None = None, rcond: float = 1e-9) -> None:
        self.n_components = n_components
        self.rcond = rcond
        self.fitted = False

    def fit(self, sequences: np.ndarray) -> PCABaseline:
        """Principal components of the training sequences (uint8 labels, ED at frame 0)."""
        seq = np.asarray(sequences)
        if seq.ndim != 5 or seq.shape[0] < 2:
            raise CardioInputError(
                "PCA baseline", f"needs >= 2 sequences [N, T, D, H, W], got {seq.shape}"
            )
        n, t = seq.shape[:2]
        self.frame_shape = seq.shape[2:]
        flat = seq.reshape(n, t, -1)
        # Only voxels labelled in some training frame carry variance; the rest stay background.
        self.mask = np.flatnonzero(flat.any(axis=(0, 1)))
        self.labels = np.ascontiguousarray(flat[:, :, self.mask])  # [N, T, V]
        n_vox = self.mask.size
        self.mean = np.zeros((t, 3, n_vox), dtype=np.float64)
        raw = np.zeros((n, n))
        raw_ed = np.zeros((n, n))
        for frame in range(t):
            for start in range(0, n_vox, _CHUNK):
                block = _one_hot(self.labels[:, frame, start : start + _CHUNK])  # [N, 3, v]
                self.mean[frame, :, start : start + _CHUNK] = block.mean(axis=0)
                matrix = block.reshape(n, -1)
                gram = (matrix @ matrix.T).astype(np.float64)
                raw += gram
                if frame == 0:
                    raw_ed += gram
        centring = np.eye(n) - 1.0 / n
        self.gram = centring @ raw @ centring
        self.gram_ed = centring @ raw_ed @ centring
        eigval, eigvec = np.linalg.eigh(self.gram)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = eigval[order], eigvec[:, order]
        # Relative to the data's own scale (labelled voxels per sequence), so that identical
        # sequences (a Gram of round-off) have rank 0.
        scale = max(float(np.trace(raw)) / n, 1.0)
        rank = int(np.sum(eigval > self.rcond * scale))
        k = rank if self.n_components is None else min(int(self.n_components), rank)
        if k < 1:
            raise CardioInputError("PCA baseline", "training sequences are all identical")
        self.explained_variance = eigval[:k] / max(n - 1, 1)
        self.coefficients = eigvec[:, :k] / np.sqrt(eigval[:k])  # A = U L^-1/2  [N, k]
        self.n_components_ = k
        self.fitted = True
        return self

    def _ed_products(self, ed: np.ndarray) -> np.ndarray:
        """Xc_ed y for y = one-hot(ed) - mean_ed: one inner product per training sequence."""
        y = _one_hot(ed.reshape(-1)[self.mask]).astype(np.float64) - self.mean[0]
        products = np.zeros(self.labels.shape[0])
        for i, struct in enumerate(_VALUES):
            hits = self.labels[:, 0, :] == struct  # [N, V]
            products += hits @ y[i]
        # Centring: subtract mean_ed . y from every training sequence's product.
        return products - float(np.sum(self.mean[0] * y))

    def complete(self, ed: np.ndarray) -> np.ndarray:
        """uint8 ED frame [D, H, W] on the training grid -> uint8 sequence [T, D, H, W]."""
        if not self.fitted:
            raise CardioInputError("PCA baseline", "fit it on training sequences first")
        ed = np.asarray(ed)
        if ed.shape != tuple(self.frame_shape):
            raise CardioInputError(
                "ED frame", f"shape {ed.shape} is not the training grid {tuple(self.frame_shape)}"
            )
        a = self.coefficients
        normal = a.T @ self.gram_ed @ a
        rhs = a.T @ self._ed_products(ed)
        code = np.linalg.lstsq(normal, rhs, rcond=None)[0]
        weights = a @ code  # reconstruction = mean + sum_i w_i (x_i - mean)
        _n, t, n_vox = self.labels.shape
        scores = self.mean * (1.0 - weights.sum())  # [T, 3, V]
        # Accumulate sum_i w_i one-hot(x_i) with one bincount per frame.
        voxel = np.arange(n_vox)
        for frame in range(t):
            lab = self.labels[:, frame, :]
            hit = lab > 0
            index = (lab[hit].astype(np.int64) - 1) * n_vox + np.broadcast_to(voxel, lab.shape)[hit]
            w = np.broadcast_to(weights[:, None], lab.shape)[hit]
            scores[frame] += np.bincount(index, weights=w, minlength=3 * n_vox).reshape(3, n_vox)
        background = 1.0 - scores.sum(axis=1, keepdims=True)
        best = np.argmax(np.concatenate([background, scores], axis=1), axis=1).astype(np.uint8)
        out = np.zeros((t, int(np.prod(self.frame_shape))), dtype=np.uint8)
        out[:, self.mask] = best
        return out.reshape(t, *self.frame_shape)
