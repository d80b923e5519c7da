"""MR-like (bSSFP cine) images of a synthetic heart and its surroundings.

Intensities come from a tissue map richer than the labels: bright blood, dark myocardium (also
the papillary muscles and trabeculae inside the LV cavity, which the labels call blood pool),
bright fat, a chest wall, lungs, liver, spine and descending aorta. The image is blurred for
partial volume, multiplied by a smooth coil bias field, given Rician noise and normalised to
[-1, 1] with the 1st and 99th percentiles of the whole sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from cardio_explorer.engine.cohort.grid import Grid
from cardio_explorer.engine.cohort.shape import HeartShape, Tissue
from cardio_explorer.engine.subject import Conditions

# Quantisation of the stored image to 512 levels over [-1, 1]: far finer than the noise (its SD
# is 10-20 levels), and float32 NIfTI files with few significant bits compress much faster.
_LEVELS = 512


@dataclass(frozen=True)
class Contrast:
    """Relative signal of each tissue (blood ~ 1) and the noise level of one scan."""

    blood: float
    myocardium: float
    fat: float
    muscle: float
    liver: float
    lung: float
    soft: float
    air: float
    bone: float
    noise: float
    blur_px: float


def sample_contrast(rng: np.random.Generator) -> Contrast:
    """Scan-to-scan variation of tissue contrast, noise and blur."""
    return Contrast(
        blood=float(rng.uniform(0.9, 1.1)),
        myocardium=float(rng.uniform(0.22, 0.34)),
        fat=float(rng.uniform(0.65, 0.85)),
        muscle=float(rng.uniform(0.25, 0.35)),
        liver=float(rng.uniform(0.33, 0.45)),
        lung=float(rng.uniform(0.04, 0.1)),
        soft=float(rng.uniform(0.14, 0.24)),
        air=0.0,
        bone=float(rng.uniform(0.35, 0.5)),
        noise=float(rng.uniform(0.025, 0.05)),
        blur_px=float(rng.uniform(0.5, 0.75)),
    )


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx, ry, shape: tuple):
    inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
    return np.broadcast_to(inside, shape)  # a mask for every slice, from one plane if need be


class Scanner:
    """Makes one subject's images: static surroundings once, then one call per frame."""

    def __init__(
        self,
        grid: Grid,
        shape: HeartShape,
        conditions: Conditions,
        rng: np.random.Generator,
    ) -> None:
        self.grid = grid
        self.rng = rng
        self.contrast = sample_contrast(rng)
        self.dense = grid.spacing_zyx[0] < 3.0
        self.background = self._surroundings(shape, conditions).astype(np.float32)
        self.bias = self._bias_field().astype(np.float32)
        self._static: np.ndarray | None = None
        self._bank: np.ndarray | None = None
        c = self.contrast
        self.tissue_signal = np.zeros(len(Tissue), np.float32)
        self.tissue_signal[Tissue.LV_BLOOD] = c.blood
        self.tissue_signal[Tissue.LV_MYO] = c.myocardium
        self.tissue_signal[Tissue.RV_BLOOD] = c.blood * float(rng.uniform(0.9, 1.0))
        self.tissue_signal[Tissue.RV_WALL] = c.myocardium * 1.1
        self.tissue_signal[Tissue.LV_MUSCLE] = c.myocardium * 1.05
        self.tissue_signal[Tissue.EPI_FAT] = c.fat
        self.tissue_signal[Tissue.ATRIAL_BLOOD] = c.blood * float(rng.uniform(0.85, 1.0))
        self.tissue_signal[Tissue.ATRIAL_WALL] = c.myocardium * 1.1

    # static parts ---------------------------------------------------------------------------
    def _surroundings(self, shape: HeartShape, conditions: Conditions) -> np.ndarray:
        """Chest wall, lungs, liver, spine and aorta around the heart (world mm, per slice)."""
        grid, c, rng = self.grid, self.contrast, self.rng
        z, y, x = (grid.axis_mm(i) for i in range(3))
        x, y = x[None, None, :], y[None, :, None]
        if np.any(grid.slice_shift_xy):
            x = x - grid.slice_shift_xy[:, 0, None, None]
            y = y - grid.slice_shift_xy[:, 1, None, None]
        # else one plane of coordinates serves every slice (the turn below makes it 2D)
        depth = (z - 0.0)[:, None, None]  # below the end-diastolic base
        hx, hy = shape.centre_xy
        # The body turns with the heart under the in-plane planning angle (grid.py).
        cos, sin = np.cos(grid.inplane_rad), np.sin(grid.inplane_rad)
        x, y = hx + cos * (x - hx) + sin * (y - hy), hy - sin * (x - hx) + cos * (y - hy)
        scale = np.sqrt(conditions.bsa / 1.9)
        bmi = conditions.weight / (conditions.height / 100.0) ** 2
        fat_mm = float(np.clip(6.0 + 1.1 * (bmi - 20.0), 4.0, 35.0))
        # Chest centred right of and behind the heart; the heart sits anterior-left.
        bx, by = hx - 45.0 + rng.normal(0, 5), hy + 35.0 + rng.normal(0, 5)
        rx, ry = 150.0 * scale + fat_mm, 105.0 * scale + fat_mm
        img = np.full(np.broadcast_shapes(x.shape, y.shape), c.air, np.float32)
        full = (len(z), len(grid.axis_mm(1)), len(grid.axis_mm(2)))
        img = np.broadcast_to(img, full).copy()
        body = _ellipse(x, y, bx, by, rx, ry, full)
        img[body] = c.fat
        inner = _ellipse(x, y, bx, by, rx - fat_mm, ry - fat_mm, full)
        img[inner] = c.muscle
        cavity = _ellipse(x, y, bx, by, rx - fat_mm - 12.0, ry - fat_mm - 10.0, full)
        img[cavity] = c.soft
        # Lungs either side of the mediastinum, shrinking towards the diaphragm.
        taper = np.clip(1.0 - np.clip(depth - 40.0, 0.0, None) / 120.0, 0.4, 1.0)
        left = _ellipse(
            x, y, hx + 55.0, hy + 15.0, 45.0 * scale * taper, 75.0 * scale * taper, full
        )
        right = _ellipse(
            x, y, bx - 75.0 * scale, by - 5.0, 55.0 * scale * taper, 80.0 * scale, full
        )
        img[cavity & (left | right)] = c.lung
        # Liver dome under the right lung and heart in the lower slices.
        dome = np.clip((depth - 35.0) / 60.0, 0.0, 1.0)
        liver = _ellipse(
            x, y, bx - 50.0, by - 10.0, 110.0 * scale * dome + 1e-3, 80.0 * dome + 1e-3, full
        )
        img[cavity & liver] = c.liver
        # Spine and descending aorta behind the heart.
        sx, sy = bx + 5.0, by + ry - fat_mm - 30.0
        img[_ellipse(x, y, sx, sy, 20.0, 20.0, full)] = c.bone
        img[_ellipse(x, y, sx, sy, 12.0, 12.0, full)] = c.bone * 1.3
        img[_ellipse(x, y, sx + 25.0, sy - 22.0, 11.0, 11.0, full)] = c.blood * 0.95
        return img

    def _bias_field(self) -> np.ndarray:
        """Smooth multiplicative coil sensitivity (about +-20 %)."""
        shape = self.grid.shape
        axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
        zz, yy, xx = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
        coef = self.rng.normal(0.0, 0.12, size=6).astype(np.float32)
        log_field = (
            coef[0] * xx
            + coef[1] * yy
            + coef[2] * xx * xx
            + coef[3] * yy * yy
            + coef[4] * xx * yy
            + 0.5 * coef[5] * zz
        )
        return np.exp(log_field)

    # per frame ------------------------------------------------------------------------------
    def image(
        self, tissue: np.ndarray, window: tuple[slice, slice, slice] | None = None
    ) -> np.ndarray:
        """Noisy, biased, blurred magnitude image (arbitrary units) of one frame's tissue map.

        window: the part of the grid where ``tissue`` can be non-zero (default: all of it).
        """
        img = self._static_image().copy()
        box = self._box(tissue.shape if window is None else window)
        # The heart only changes its box: blur the box (plus margin) on the static background
        # instead of the whole field of view.
        local = self.background[box].copy()
        local_tissue = tissue[box]
        inside = local_tissue > 0
        local[inside] = self.tissue_signal[local_tissue[inside]]
        img[box] = self._blur(local) * self.bias[box]
        real, imaginary = self._noise(img.shape)
        img += real
        np.square(img, out=img)
        img += np.square(imaginary)
        return np.sqrt(img, out=img)

    def _noise(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Real and imaginary Gaussian noise of one frame (Rician after the magnitude).

        Drawing ~10^7 normals per subject dominated the image time, so each frame reads two
        windows at random offsets from one bank of normals drawn per subject: every voxel still
        gets white Gaussian noise, independent between its two channels and between frames.
        """
        size = int(np.prod(shape))
        if self._bank is None:
            self._bank = self.rng.standard_normal(3 * size, dtype=np.float32)
            self._bank *= np.float32(self.contrast.noise)
        first, second = self.rng.integers(0, size, size=2)
        real = self._bank[first : first + size].reshape(shape)
        imaginary = self._bank[second + size : second + 2 * size].reshape(shape)
        return real, imaginary

    def _box(self, window) -> tuple[slice, slice, slice]:
        if isinstance(window, tuple) and window and isinstance(window[0], slice):
            _, ys, xs = window
            y0, y1, x0, x1 = ys.start or 0, ys.stop, xs.start or 0, xs.stop
        else:
            y0, y1, x0, x1 = 0, window[1], 0, window[2]
        pad = int(np.ceil(3 * self.contrast.blur_px)) + 1
        ny, nx = self.grid.shape[1:]
        return (
            slice(None),
            slice(max(0, y0 - pad), min(ny, y1 + pad)),
            slice(max(0, x0 - pad), min(nx, x1 + pad)),
        )

    def _static_image(self) -> np.ndarray:
        if self._static is None:
            self._static = self._blur(self.background) * self.bias
        return self._static

    def _blur(self, img: np.ndarray) -> np.ndarray:
        sigma = self.contrast.blur_px
        # Thick short-axis slices: in-plane blur only; dense grids blur in 3D.
        sigmas = (sigma if self.dense else 0.0, sigma, sigma)
        return ndi.gaussian_filter(img, sigmas, mode="nearest", truncate=3.0)


def normalise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map the 1st-99th percentile of a whole sequence to [-1, 1], clip, quantise (9-bit).

    Works in place on ``images`` (float32) and returns it.
    """
    flat = images.reshape(-1)
    step = max(1, flat.size // 400_000)
    sample = flat[int(rng.integers(0, step)) :: step]
    lo, hi = np.percentile(sample, [1.0, 99.0])
    half = _LEVELS / 2
    # Quantisation steps of 1/half on [-1, 1]: scale straight to steps, round, scale back.
    scale = 2.0 / max(hi - lo, 1e-6) * half
    np.multiply(images, np.float32(scale), out=images)
    images -= np.float32(lo * scale + half)
    np.clip(images, -half, half, out=images)
    np.rint(images, out=images)
    images *= np.float32(1.0 / half)
    return images
