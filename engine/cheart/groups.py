"""Generation by group: which component of CHeart's fitted prior mixture a heart comes from.

The prior (engine/cheart/prior.py) is a mixture over the training cohort's groups with p(g | c)
from the conditions. Asking for a group fixes the component; ``None`` (or ``"any"`` from a CLI or
the app) draws it from p(g | c) as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.subject import GROUPS

ANY_GROUP = "any"  # the component drawn from p(g | c)
GROUP_CHOICES = (*GROUPS, ANY_GROUP)
GROUP_HELP = (
    "which group's component of CHeart's prior the hearts come from: NOR (normal), DCM, HCM, "
    "MINF, ARV, or any (drawn from p(group | conditions), the training cohort's mix)"
)


def parse_group(value: Any) -> str | None:
    """A group name ('nor' -> 'NOR'), or None for None / 'any'; CardioInputError otherwise."""
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() == ANY_GROUP:
        return None
    if text.upper() not in GROUPS:
        raise CardioInputError(
            "group", f"{text!r} is unknown; choose one of {', '.join(GROUP_CHOICES)}"
        )
    return text.upper()


def model_groups(model: Any) -> tuple[str, ...]:
    """The groups a CHeart model can generate by: its prior's components, or () when the prior
    is missing or has one component for everyone."""
    prior = getattr(model, "prior", None)
    if prior is None or len(prior.groups) < 2:
        return ()
    return tuple(prior.groups)


def group_index(model: Any, group: Any) -> int | None:
    """The prior component of ``group`` (None: drawn from the conditions); CardioInputError
    naming the group and the model's choices when the model has no such component."""
    name = parse_group(group)
    if name is None:
        return None
    groups = model_groups(model)
    if name not in groups:
        if not groups:
            why = "this CHeart model's prior has no groups (one component); the only choice is any"
        else:
            why = f"this CHeart model's prior has no such component; choose one of {groups}"
        raise CardioInputError("group", f"{name!r}: {why}")
    return groups.index(name)


def group_components(model: Any, group: Any, n: int) -> np.ndarray | None:
    """Component indices [n] all of ``group``, or None to draw them (see :func:`group_index`)."""
    index = group_index(model, group)
    return None if index is None else np.full(int(n), index, dtype=np.int64)
