"""Parametric heart rasterised on a voxel grid, with exact control of every structure's volume.

Heart frame: the LV long axis is world z (base at z = 0 at end-diastole, apex towards +z); in
each slice, ``u`` points from the LV axis to the septum (where the RV sits) and ``w`` is
perpendicular. ``zp`` is the depth below the current base.

- LV blood pool: truncated prolate ellipsoid, endocardial radius
  ``a * shape(theta) * s * g(zp)`` with low-order harmonics ``shape`` and the ellipsoid profile
  ``g``; cut by a (slightly tilted) base plane.
- LV myocardium: epicardial radius ``a * shape * s * g(zp) + k * T(theta, zp) * cap(zp)``, where
  ``T`` is the regional thickness profile (HCM septal bulge, MINF thinned sector, thinner apex)
  and ``cap`` rounds the wall off over the apex. The in-plane wall is thus ``k * T`` down to the
  apex, as on real short-axis slices (no spurious thickening where the cavity tapers).
- RV blood pool: a pencil of ellipses through a vertex inside the LV on the septal side, minus
  the LV, so it is a crescent wrapped on the septum; its axes turn about the LV axis from base
  to apex (``rv_twist``), as the RV does on real stacks.

Each of ``s``, ``k`` and ``q`` (RV size) enters monotonically, so every voxel has a critical
value at which it joins its structure; taking the N-th smallest critical value gives exactly N
voxels. Volumes are therefore hit to the voxel on any grid, myocardial volume is conserved over
the cycle by construction, and the wall thickens as the cavity shrinks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cardio_explorer.engine.cohort.detail import add_cavity_muscle, add_surroundings
from cardio_explorer.engine.cohort.grid import Grid
from cardio_explorer.engine.cohort.shape import AKINESIS, TISSUE_TO_LABEL, HeartShape, Tissue
from cardio_explorer.engine.labels import Label


@dataclass(frozen=True)
class FrameState:
    """Scalars that define one frame: base descent (mm), endocardial, wall and RV scales."""

    descent_mm: float
    s: float
    k: float
    q: float


@dataclass(frozen=True)
class HeartFrame:
    """One rasterised frame: tissue map (Tissue values), label map (Label values), its state."""

    tissue: np.ndarray
    labels: np.ndarray
    state: FrameState


def _wrap(angle: np.ndarray | float) -> np.ndarray:
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def _window(x: np.ndarray, lo: float, hi: float, edge: float = 0.12) -> np.ndarray:
    """Smooth 0-1 window that is 1 on [lo, hi] and falls off over ``edge``."""
    rise = np.clip((x - (lo - edge)) / edge, 0.0, 1.0)
    fall = np.clip(((hi + edge) - x) / edge, 0.0, 1.0)
    return (rise * rise * (3 - 2 * rise)) * (fall * fall * (3 - 2 * fall))


def _ellipse_profile(zp: np.ndarray, centre: float, length: float) -> np.ndarray:
    """Radius factor of an ellipsoid centred ``centre`` below the base reaching ``length``."""
    v = (zp - centre) / max(length - centre, 1e-6)
    return np.sqrt(np.clip(1.0 - v * v, 0.0, None))


def _apex_cap(zp: np.ndarray, length: float, apex_wall: float) -> np.ndarray:
    """Wall factor: 1 down to near the endocardial apex, then a rounded cap ``apex_wall`` deep."""
    start = 0.88 * length
    v = np.clip((zp - start) / (length + apex_wall - start), 0.0, None)
    return np.sqrt(np.clip(1.0 - v * v, 0.0, None))


def _nth_smallest(values: np.ndarray, n: int) -> float:
    """The n-th smallest value (1-based): thresholding at it keeps exactly n values."""
    if n <= 0:
        return -np.inf
    n = min(n, values.size)
    return float(np.partition(values, n - 1)[n - 1])


class HeartModel:
    """A heart shape placed on a grid; ``calibrate`` fits end-diastole, ``frame`` any phase."""

    def __init__(self, grid: Grid, shape: HeartShape) -> None:
        self.grid = grid
        self.shape = shape
        self.z = grid.axis_mm(0)
        self.a = shape.lv_radius_mm
        self.bump_amp = shape.bump_amp
        self.k0: float | None = None
        # End-diastolic in-plane bounding box (y0, y1, x0, x1; voxel indices), set by focus().
        self.heart_box: tuple[int, int, int, int] | None = None
        self._set_window(slice(0, grid.shape[1]), slice(0, grid.shape[2]), detail=False)

    def _set_window(self, ys: slice, xs: slice, detail: bool) -> None:
        """Compute the static per-voxel fields on an in-plane window of the grid (with the
        image-only ones when ``detail``)."""
        grid, shape = self.grid, self.shape
        self.window = (slice(None), ys, xs)
        y, x = grid.axis_mm(1)[ys], grid.axis_mm(2)[xs]
        cx = shape.centre_xy[0] + grid.slice_shift_xy[:, 0]
        cy = shape.centre_xy[1] + grid.slice_shift_xy[:, 1]
        dx = (x[None, None, :] - cx[:, None, None]).astype(np.float32)
        dy = (y[None, :, None] - cy[:, None, None]).astype(np.float32)
        # The image axes are the heart frame's turned by the in-plane planning angle.
        angle = shape.septum_angle + grid.inplane_rad
        cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        self.u = dx * cos + dy * sin
        self.w = dy * cos - dx * sin
        self.rho = np.hypot(self.u, self.w)
        # The RV's axes turn about the LV axis from base to apex, as on real stacks (by depth
        # below the end-diastolic base: the turn goes with the tissue, not the moving base).
        depth = np.clip(self.z / shape.lv_length_mm, 0.0, 1.0)
        turn = (shape.rv_twist * depth).astype(np.float32)[:, None, None]
        self.rv_u = self.u * np.cos(turn) + self.w * np.sin(turn)
        self.rv_w = self.w * np.cos(turn) - self.u * np.sin(turn)
        self.theta = np.arctan2(self.w, self.u)
        self.ashape = self.shape_factor(self.theta)
        self.tilt = (shape.base_tilt[0] * self.u + shape.base_tilt[1] * self.w).astype(np.float32)
        self.bump_theta = self._bump_theta(self.theta)
        self.infarct_theta = self._infarct_theta(self.theta)
        self.detail = detail
        if not detail:
            return
        # Image-only anatomy: cosine of the angle to each papillary muscle, and the phase of
        # the trabecular pattern.
        self.papillary_cos = [np.cos(self.theta - angle) for angle in shape.papillary_angles]
        phase = shape.trabecular_order * self.theta + shape.trabecular_phase
        self.trabecular_cos = np.cos(phase).astype(np.float32)
        self.trabecular_sin = np.sin(phase).astype(np.float32)
        self.trabecular_patches = np.cos(5 * self.theta - 3 * shape.trabecular_phase) > -0.2
        self.fat_patches = np.cos(3 * self.theta - shape.fat_phase) > -0.3

    def focus(self, n_rv: int, detail: bool = True, margin_mm: float = 6.0) -> None:
        """Restrict work to the heart's in-plane bounding box (end-diastole is the largest);
        ``detail`` adds the image-only anatomy (papillary muscles, trabeculae, fat)."""
        n_lv, n_myo = self._ed_counts
        ed = self.frame(0.0, n_lv, n_myo, n_rv, systole=0.0)
        occupied = (
            np.flatnonzero(ed.tissue.any(axis=(0, 2))),
            np.flatnonzero(ed.tissue.any(axis=(0, 1))),
        )
        if occupied[0].size == 0:
            self._set_window(*self.window[1:], detail=detail)
            return
        self.heart_box = (occupied[0][0], occupied[0][-1], occupied[1][0], occupied[1][-1])
        bounds = []
        for axis, idx in zip((1, 2), occupied, strict=True):
            pad = int(np.ceil(margin_mm / self.grid.spacing_zyx[axis]))
            bounds.append(
                slice(max(0, idx[0] - pad), min(self.grid.shape[axis], idx[-1] + pad + 1))
            )
        self._set_window(*bounds, detail=detail)

    # static angular factors -----------------------------------------------------------------
    def shape_factor(self, theta: np.ndarray | float) -> np.ndarray:
        """Endocardial radius factor at in-plane angle ``theta`` (low-order harmonics)."""
        out = np.ones_like(theta, dtype=np.float32)
        for order, amp, phase in self.shape.harmonics:
            out = out + np.float32(amp) * np.cos(order * theta - phase).astype(np.float32)
        return out

    def _bump_theta(self, theta: np.ndarray | float) -> np.ndarray:
        d = _wrap(theta - self.shape.bump_angle) / self.shape.bump_width
        return np.exp(-0.5 * d * d).astype(np.float32)

    def _infarct_theta(self, theta: np.ndarray | float) -> np.ndarray | None:
        inf = self.shape.infarct
        if inf is None:
            return None
        d = np.abs(_wrap(theta - inf.angle)) / inf.half_width
        return (0.5 * (1 + np.cos(np.pi * np.clip(d, 0.0, 1.0)))).astype(np.float32)

    # depth profiles ---------------------------------------------------------------------------
    def _profiles(self, descent: float) -> dict[str, np.ndarray]:
        sh = self.shape
        length0 = sh.lv_length_mm
        zp = self.z - descent
        length = length0 - descent
        centre = sh.centre_frac * length0
        zn = zp / length0
        prof = {
            "zp": zp,
            "length": np.float64(length),
            "g_endo": _ellipse_profile(zp, centre, length),
            "cap": _apex_cap(zp, length, sh.apex_wall_mm),
            "g_rv": _ellipse_profile(zp, centre, sh.rv_length_frac * length),
            "bump_z": _window(zn, *sh.bump_z),
            "taper": 1.0 - sh.apical_taper * _window(zn, 0.95, 2.0, edge=0.5),
        }
        if sh.infarct is not None:
            prof["infarct_z"] = _window(zn, *sh.infarct.z_range)
        return prof

    def _thickness(self, prof: dict[str, np.ndarray], theta_terms: tuple) -> np.ndarray:
        """Relative wall thickness T for the given angular factors (bump, infarct)."""
        bump_theta, infarct_theta = theta_terms
        bz = prof["bump_z"].astype(np.float32)[:, None, None]
        taper = prof["taper"].astype(np.float32)[:, None, None]
        thickness = (1.0 + np.float32(self.bump_amp) * bump_theta * bz) * taper
        if infarct_theta is not None:
            iz = prof["infarct_z"].astype(np.float32)[:, None, None]
            thickness = thickness * (
                1.0 - np.float32(self.shape.infarct.thinning) * infarct_theta * iz
            )
        return thickness

    def _akinesis(self, prof: dict[str, np.ndarray], infarct_theta) -> np.ndarray | float:
        if infarct_theta is None or self.k0 is None:
            return 0.0
        iz = prof["infarct_z"].astype(np.float32)[:, None, None]
        return np.float32(AKINESIS) * infarct_theta * iz

    # structures -------------------------------------------------------------------------------
    def _below_base(self, prof: dict[str, np.ndarray], extra_mm: float = 0.0) -> np.ndarray:
        return prof["zp"].astype(np.float32)[:, None, None] + np.float32(extra_mm) >= self.tilt

    def _lv(self, prof, below, n_lv: int, akinesis):
        g = prof["g_endo"].astype(np.float32)[:, None, None]
        r0 = np.float32(self.a) * self.ashape * g
        with np.errstate(divide="ignore", invalid="ignore"):
            sstar = np.where(below & (r0 > 0), self.rho / r0, np.inf)
            if not np.isscalar(akinesis):
                sstar = 1.0 + (sstar - 1.0) / (1.0 - akinesis)
        s = _nth_smallest(sstar[np.isfinite(sstar)], n_lv)
        return sstar <= s, s, r0

    def _myo(self, prof, below, lv, s, thickness, n_myo: int, akinesis):
        g = prof["g_endo"].astype(np.float32)[:, None, None]
        cap = prof["cap"].astype(np.float32)[:, None, None]
        s_eff = 1.0 + (s - 1.0) * (1.0 - akinesis)
        inner = np.float32(self.a) * self.ashape * s_eff * g
        wall = thickness * cap
        with np.errstate(divide="ignore", invalid="ignore"):
            if np.isscalar(akinesis):
                kstar = (self.rho - inner) / wall
            else:
                kstar = (self.rho - inner - self.k0 * akinesis * wall) / ((1.0 - akinesis) * wall)
            kstar = np.where(below & (cap > 0) & ~lv, kstar, np.inf)
        k = _nth_smallest(kstar[np.isfinite(kstar)], n_myo)
        return kstar <= k, k, kstar

    def _septal_epicardium(self, prof, s: float, k: float) -> np.ndarray:
        """Epicardial radius (mm) on the septal axis (theta = 0) per slice."""
        zero = np.zeros(1, dtype=np.float32)
        bump0, inf0 = self._bump_theta(zero), self._infarct_theta(zero)
        thickness = self._thickness(prof, (bump0, inf0))[:, 0, 0]
        akin = self._akinesis(prof, inf0)
        akin = akin[:, 0, 0] if not np.isscalar(akin) else akin
        s_eff = 1.0 + (s - 1.0) * (1.0 - akin)
        k_eff = k if self.k0 is None else self.k0 * akin + k * (1.0 - akin)
        inner = self.a * self.shape_factor(zero)[0] * s_eff * prof["g_endo"]
        return inner + k_eff * thickness * prof["cap"]

    def _rv_field(self, prof, s: float, k: float) -> np.ndarray:
        """Critical RV size q* of every voxel (inf where the RV can never reach)."""
        sh = self.shape
        vertex = (sh.rv_vertex_frac * self._septal_epicardium(prof, s, k)).astype(np.float32)
        g = prof["g_rv"].astype(np.float32)[:, None, None]
        u, w = self.rv_u, self.rv_w
        du = u - vertex[:, None, None]
        cos, sin = np.float32(np.cos(sh.rv_rotation)), np.float32(np.sin(sh.rv_rotation))
        with np.errstate(divide="ignore", invalid="ignore"):
            xr = (cos * du + sin * w) / g
            yr = (cos * w - sin * du) / (np.float32(sh.rv_aspect) * g)
            qstar = (xr * xr + yr * yr) / (2.0 * xr)
        return np.where((xr > 0) & (g > 0), qstar, np.inf)

    # public -----------------------------------------------------------------------------------
    def calibrate(
        self,
        n_lv: int,
        n_myo: int,
        wall_mm: float,
        measure_wall: Callable[[np.ndarray], float],
        iterations: int = 3,
    ) -> float:
        """Fit end-diastole: endocardial scale for n_lv voxels, wall profile so that
        ``measure_wall(labels)`` gives ``wall_mm`` with n_myo myocardial voxels; returns the
        measured wall."""
        self._ed_counts = (n_lv, n_myo)
        prof = self._profiles(0.0)
        below = self._below_base(prof)
        _, s, _ = self._lv(prof, below, n_lv, 0.0)
        self.a *= s
        lv, s, _ = self._lv(prof, below, n_lv, 0.0)
        terms = (self.bump_theta, self.infarct_theta)
        lo, hi = (0.3, 2.2) if self.shape.group == "HCM" else (0.0, 0.8)
        tried: list[tuple[float, float]] = []
        amp = float(np.clip(self.bump_amp, lo, hi))
        for _ in range(iterations):
            self.bump_amp = amp
            myo, _, _ = self._myo(prof, below, lv, s, self._thickness(prof, terms), n_myo, 0.0)
            labels = np.zeros(self.grid.shape, np.uint8)
            labels[self.window][lv] = Label.LV
            labels[self.window][myo] = Label.MYO
            measured = measure_wall(labels)
            tried.append((amp, measured))
            if abs(measured - wall_mm) < 0.15:
                break
            amp = self._next_amp(tried, wall_mm, lo, hi)
            if amp == tried[-1][0]:
                break
        best = min(tried, key=lambda t: abs(t[1] - wall_mm))
        self.bump_amp = best[0]
        _, self.k0, _ = self._myo(prof, below, lv, s, self._thickness(prof, terms), n_myo, 0.0)
        return best[1]

    @staticmethod
    def _next_amp(tried: list[tuple[float, float]], target: float, lo: float, hi: float) -> float:
        amp, wall = tried[-1]
        if len(tried) >= 2 and abs(tried[-1][1] - tried[-2][1]) > 1e-3:
            slope = (tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0])
            slope = max(slope, 0.5)
        else:
            slope = wall / (1.0 + amp) * 0.8  # wall grows about like (1 + amp)
        return float(np.clip(amp + (target - wall) / slope, lo, hi))

    def frame(
        self, descent_mm: float, n_lv: int, n_myo: int, n_rv: int, systole: float
    ) -> HeartFrame:
        """Rasterise one phase: base ``descent_mm`` towards the apex and exact voxel counts.

        systole: 0 at end-diastole, 1 at end-systole (papillary muscles thicken with it).
        """
        prof = self._profiles(descent_mm)
        below = self._below_base(prof)
        terms = (self.bump_theta, self.infarct_theta)
        akinesis = self._akinesis(prof, self.infarct_theta)
        lv, s, r0 = self._lv(prof, below, n_lv, akinesis)
        thickness = self._thickness(prof, terms)
        myo, k, kstar = self._myo(prof, below, lv, s, thickness, n_myo, akinesis)
        qstar = self._rv_field(prof, s, k)
        rv_below = self._below_base(prof, self.shape.rv_base_mm)
        taken = lv | myo
        qstar_rv = np.where(rv_below & ~taken & (kstar > k), qstar, np.inf)
        q = _nth_smallest(qstar_rv[np.isfinite(qstar_rv)], n_rv)
        rv = qstar_rv <= q

        tissue = np.zeros(self.rho.shape, np.uint8)
        tissue[lv] = Tissue.LV_BLOOD
        tissue[myo] = Tissue.LV_MYO
        tissue[rv] = Tissue.RV_BLOOD
        if self.detail:
            add_surroundings(self, tissue, prof, below, rv_below, s, k, q, qstar, kstar)
            add_cavity_muscle(self, tissue, lv, prof, r0, s, akinesis, systole)
        full = np.zeros(self.grid.shape, np.uint8)
        full[self.window] = tissue
        state = FrameState(descent_mm, s, k, q)
        return HeartFrame(tissue=full, labels=TISSUE_TO_LABEL[full], state=state)
