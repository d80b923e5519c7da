"""A conditional prior for CHeart's frame-0 latent, fitted to the training posteriors.

CHeart is trained with a tiny KL weight (beta 0.001, as the paper), so its aggregate posterior
is far from N(0, I): a standard-normal z decodes to hearts of the wrong size and spread, and
because the encoder sees the ED frame, z (not the decoder's condition code) carries most of what
the conditions do to the heart. Ex-post density estimation (Ghosh et al., "From variational to
deterministic autoencoders", ICLR 2020) fixes this: after training, fit a density to the
posterior means and sample from it. Ours is a mixture over the training cohort's groups,

    p(z0 | c) = sum_g p(g | c) N(z0; W c + b_g, L_g L_g^T),

with p(g | c) a multinomial logistic regression on the normalised conditions (older subjects are
more often infarcts in the cohort, which is how age raises the population's LVEDV), W shared
across groups (least squares with group intercepts b_g) and L_g the Cholesky factor of each
group's residual covariance, shrunk towards its diagonal (30-40 subjects per group for a 32 x 32
covariance). A cohort without groups gives one component. A sample is ``W c + b_g + L_g e`` with
e ~ N(0, I) and g drawn from a uniform u, so a fixed (e, g) in a condition sweep is the same
individual at another age.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from cardio_explorer.engine.device import autocast
from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import Conditions

_ENCODE_BATCH = 8
# Relative jitter on the residual covariance's diagonal: keeps the Cholesky factor finite when
# some latent dimensions are unused (constant posterior means).
_JITTER = 1e-6
# Fewer subjects than this in any group: a single component for all.
MIN_PER_GROUP = 5
# Weight of the diagonal in each group's residual covariance (few subjects per group).
_SHRINKAGE = 0.3


def _draw(
    weights: np.ndarray,
    intercepts: np.ndarray,
    factors: np.ndarray,
    noise: np.ndarray,
    conditions: np.ndarray,
    components: np.ndarray,
) -> np.ndarray:
    """Draws [N, d] of a linear-Gaussian law (``_linear_gaussian``'s parameters) from standard
    normals [N, d], conditions [N, k] and each draw's group component [N]."""
    mean = conditions @ weights.T + intercepts[components]
    spread = np.einsum("nij,nj->ni", factors[components], noise)
    return (mean + spread).astype(np.float32)


@dataclass(frozen=True)
class GroupMotionPrior:
    """p(m | c, g) of a motion-code model: per group a Gaussian over the motion code (LV and
    RV log ESV/EDV, standardised), its mean linear in the conditions (shared weights, a group
    intercept), fitted ex-post like p(z0 | c). The network's own prior p(m | z0, c) does not
    know the group: on a held-out cohort its mean reads infarcts at LVEF 53 % against 31 %, and
    it drew 24 % for a normal heart; given the group and the conditions, the mean's LVEF error
    is 7.3 points, and adding z0 does not lower it (README, issue 19). Generation from a
    component draws m from here; completion, which knows no group, keeps the network's."""

    weights: np.ndarray  # [2, k]
    intercepts: np.ndarray  # [G, 2]
    factors: np.ndarray  # [G, 2, 2], lower triangular

    def sample(
        self, noise: np.ndarray, conditions: np.ndarray, components: np.ndarray
    ) -> np.ndarray:
        """Motion codes [N, 2] from standard normals [N, 2], conditions [N, k], components [N]."""
        noise = np.asarray(noise, dtype=np.float64).reshape(len(components), -1)
        components = np.asarray(components, dtype=np.int64)
        conditions = np.asarray(conditions, dtype=np.float64)
        return _draw(self.weights, self.intercepts, self.factors, noise, conditions, components)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (inside the latent prior's)."""
        return {
            "weights": self.weights.tolist(),
            "intercepts": self.intercepts.tolist(),
            "factors": self.factors.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], n_groups: int) -> GroupMotionPrior:
        """Read back :meth:`to_dict` (ValueError when the shapes do not fit ``n_groups``)."""
        prior = cls(
            *(np.asarray(data[k], np.float64) for k in ("weights", "intercepts", "factors"))
        )
        if (
            prior.weights.ndim != 2
            or prior.weights.shape[0] != 2
            or prior.intercepts.shape != (n_groups, 2)
            or prior.factors.shape != (n_groups, 2, 2)
        ):
            raise ValueError(f"motion prior shapes do not fit {n_groups} groups")
        return prior


@dataclass(frozen=True)
class LatentPrior:
    """p(z0 | c): a mixture of linear-Gaussian components (see the module docstring)."""

    groups: tuple[str, ...]
    weights: np.ndarray  # [z, k], shared by the components
    intercepts: np.ndarray  # [G, z]
    factors: np.ndarray  # [G, z, z], lower triangular
    logit_weights: np.ndarray  # [G, k]: p(g | c) = softmax(logit_weights @ c + logit_bias)
    logit_bias: np.ndarray  # [G]
    n_subjects: int
    motion: GroupMotionPrior | None = None  # p(m | c, g) of a motion-code model

    @property
    def z_dim(self) -> int:
        """Latent size."""
        return int(self.weights.shape[0])

    def component_probabilities(self, conditions: np.ndarray) -> np.ndarray:
        """p(g | c) [N, G] for normalised conditions [N, k]."""
        logits = np.asarray(conditions, np.float64) @ self.logit_weights.T + self.logit_bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def choose(self, uniforms: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Component index [N] for uniforms [N] in [0, 1) at conditions [N, k]."""
        cumulative = np.cumsum(self.component_probabilities(conditions), axis=1)
        u = np.asarray(uniforms, np.float64)[:, None] * cumulative[:, -1:]
        return np.minimum((u >= cumulative).sum(axis=1), len(self.groups) - 1)

    def sample(
        self, noise: np.ndarray, conditions: np.ndarray, components: np.ndarray
    ) -> np.ndarray:
        """Frame-0 latents [N, z] from standard normals [N, z], conditions [N, k] and the
        component index [N] of each (see :meth:`choose`)."""
        noise = np.asarray(noise, dtype=np.float64)
        conditions = np.asarray(conditions, dtype=np.float64)
        components = np.asarray(components, dtype=np.int64)
        if noise.ndim != 2 or noise.shape[1] != self.z_dim:
            raise CardioInputError("z", f"expected [N, {self.z_dim}], got {noise.shape}")
        if conditions.shape != (len(noise), self.weights.shape[1]) or components.shape != (
            len(noise),
        ):
            raise CardioInputError(
                "conditions",
                f"expected [{len(noise)}, {self.weights.shape[1]}] and {len(noise)} components, "
                f"got {conditions.shape} and {components.shape}",
            )
        return _draw(self.weights, self.intercepts, self.factors, noise, conditions, components)

    def motion_codes(
        self, noise: np.ndarray, conditions: np.ndarray, components: np.ndarray
    ) -> np.ndarray | None:
        """Motion codes [N, 2] from standard normals [N, 2] at conditions [N, k] and components
        [N]; None when the prior has no motion part."""
        if self.motion is None:
            return None
        return self.motion.sample(noise, conditions, components)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (stored in the checkpoint header)."""
        motion = {} if self.motion is None else {"motion": self.motion.to_dict()}
        return {
            **motion,
            "groups": list(self.groups),
            "weights": self.weights.tolist(),
            "intercepts": self.intercepts.tolist(),
            "factors": self.factors.tolist(),
            "logit_weights": self.logit_weights.tolist(),
            "logit_bias": self.logit_bias.tolist(),
            "n_subjects": self.n_subjects,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], z_dim: int, n_conditions: int) -> LatentPrior:
        """Read back :meth:`to_dict`; CardioInputError when the shapes do not fit the model."""
        try:
            prior = cls(
                groups=tuple(str(g) for g in data["groups"]),
                weights=np.asarray(data["weights"], dtype=np.float64),
                intercepts=np.asarray(data["intercepts"], dtype=np.float64),
                factors=np.asarray(data["factors"], dtype=np.float64),
                logit_weights=np.asarray(data["logit_weights"], dtype=np.float64),
                logit_bias=np.asarray(data["logit_bias"], dtype=np.float64),
                n_subjects=int(data["n_subjects"]),
            )
            if "motion" in data:
                motion = GroupMotionPrior.from_dict(data["motion"], len(prior.groups))
                prior = replace(prior, motion=motion)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CardioInputError("latent prior", f"is malformed ({error})") from None
        g = len(prior.groups)
        shapes_ok = (
            g >= 1
            and prior.weights.shape == (z_dim, n_conditions)
            and prior.intercepts.shape == (g, z_dim)
            and prior.factors.shape == (g, z_dim, z_dim)
            and prior.logit_weights.shape == (g, n_conditions)
            and prior.logit_bias.shape == (g,)
        )
        arrays = (
            prior.weights,
            prior.intercepts,
            prior.factors,
            prior.logit_weights,
            prior.logit_bias,
        )
        if prior.motion is not None:
            shapes_ok = shapes_ok and prior.motion.weights.shape[1] == n_conditions
            arrays += (prior.motion.weights, prior.motion.intercepts, prior.motion.factors)
        if not (shapes_ok and all(np.all(np.isfinite(a)) for a in arrays)):
            raise CardioInputError(
                "latent prior", f"does not fit a {z_dim}-dim latent with {n_conditions} conditions"
            )
        return prior


def _group_probabilities(conditions: np.ndarray, index: np.ndarray, n_groups: int):
    if n_groups == 1:
        return np.zeros((1, conditions.shape[1])), np.zeros(1)
    # sklearn takes seconds to import and only fitting needs it (the app only samples)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=5000).fit(conditions, index)
    if n_groups == 2:  # sklearn keeps one row for two classes: logit(p1) = w c + b
        return (
            np.vstack([np.zeros_like(model.coef_[0]), model.coef_[0]]),
            np.array([0.0, model.intercept_[0]]),
        )
    return model.coef_.astype(np.float64), model.intercept_.astype(np.float64)


def fit_latent_prior(
    posterior_means: np.ndarray,
    conditions: np.ndarray,
    groups: Sequence[str | None] | None = None,
    motion_codes: np.ndarray | None = None,
) -> LatentPrior:
    """Fit p(z0 | c) to posterior means [N, z], normalised conditions [N, k] and each subject's
    group (None, missing groups or a group under MIN_PER_GROUP subjects: one component); with
    the subjects' motion codes [N, 2], p(m | c, g) too."""
    z = np.asarray(posterior_means, dtype=np.float64)
    c = np.asarray(conditions, dtype=np.float64)
    if z.ndim != 2 or c.ndim != 2 or len(z) != len(c):
        raise CardioInputError("latent prior", f"needs [N, z] and [N, k], got {z.shape}, {c.shape}")
    labels = [g or "all" for g in groups] if groups is not None else ["all"] * len(z)
    if min(labels.count(g) for g in set(labels)) < MIN_PER_GROUP:
        labels = ["all"] * len(z)  # a group too small for its own covariance: one component
    names = sorted(set(labels))
    index = np.array([names.index(g) for g in labels])
    if len(z) < c.shape[1] + len(names) + 1:
        raise CardioInputError(
            "latent prior", f"needs at least {c.shape[1] + len(names) + 1} subjects, got {len(z)}"
        )
    weights, intercepts, factors = _linear_gaussian(z, c, index, len(names))
    motion = None
    if motion_codes is not None:
        codes = np.asarray(motion_codes, dtype=np.float64)
        if codes.shape != (len(z), 2):
            raise CardioInputError("motion prior", f"needs codes [{len(z)}, 2], got {codes.shape}")
        motion = GroupMotionPrior(*_linear_gaussian(codes, c, index, len(names)))
    logit_weights, logit_bias = _group_probabilities(c, index, len(names))
    return LatentPrior(
        groups=tuple(names),
        weights=weights,
        intercepts=intercepts,
        factors=factors,
        logit_weights=logit_weights,
        logit_bias=logit_bias,
        n_subjects=len(z),
        motion=motion,
    )


def _linear_gaussian(
    targets: np.ndarray, conditions: np.ndarray, index: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights [d, k] shared by the groups, intercepts [G, d], Cholesky factors [G, d, d] of
    each group's residual covariance, shrunk towards its diagonal) of targets [N, d] regressed
    on conditions [N, k] and the group index [N] (least squares)."""
    one_hot = (index[:, None] == np.arange(n_groups)[None]).astype(np.float64)
    design = np.hstack([conditions, one_hot])
    coef, *_ = np.linalg.lstsq(design, targets, rcond=None)  # [k + G, d]
    residual = targets - design @ coef
    factors = []
    for g in range(n_groups):
        cov = np.atleast_2d(np.cov(residual[index == g], rowvar=False))
        cov = (1 - _SHRINKAGE) * cov + _SHRINKAGE * np.diag(np.diag(cov))
        scale = max(float(np.trace(cov)) / len(cov), 1e-12)
        factors.append(np.linalg.cholesky(cov + np.eye(len(cov)) * _JITTER * scale))
    k = conditions.shape[1]
    return coef[:k].T.copy(), coef[k:].copy(), np.stack(factors)


@torch.inference_mode()
def posterior_means(
    net: torch.nn.Module, ed_labels: np.ndarray, conditions: np.ndarray, device: torch.device
) -> np.ndarray:
    """Posterior means [N, z] of ED label volumes [N, D, H, W] with normalised conditions."""
    was_training = net.training
    net.eval()
    means = []
    try:
        for start in range(0, len(ed_labels), _ENCODE_BATCH):
            labels = torch.from_numpy(ed_labels[start : start + _ENCODE_BATCH].astype(np.int64))
            c = torch.from_numpy(conditions[start : start + _ENCODE_BATCH])
            with autocast(device):
                mu, _ = net.encode(labels.to(device), c.to(device))
            means.append(mu.float().cpu().numpy())
    finally:
        net.train(was_training)
    return np.concatenate(means)


def prior_for_sequences(
    net: torch.nn.Module,
    stats: Any,  # ConditionStats
    ed_labels: np.ndarray,
    conditions: Sequence[Conditions],
    groups: Sequence[str | None] | None,
    device: torch.device,
    motion_codes: np.ndarray | None = None,
) -> LatentPrior:
    """Fit the prior to the ED frames [N, D, H, W] of training sequences, their conditions and
    groups (and their motion codes [N, 2], see ``fit_latent_prior``)."""
    matrix = stats.matrix(conditions)
    z = posterior_means(net, ed_labels, matrix, device)
    return fit_latent_prior(z, matrix, groups, motion_codes)
