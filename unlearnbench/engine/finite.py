"""Divergence checks: a model with a NaN or infinite weight or output is never cached,
scored or written; the run stops with the config key to change."""

from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import Tensor

from unlearnbench.errors import Diverged


def first_nonfinite(state: Mapping[str, Tensor]) -> Optional[str]:
    """The name of the first floating-point tensor of ``state`` holding NaN or ±inf, else None."""
    for name, t in state.items():
        if torch.is_floating_point(t) and not bool(torch.isfinite(t).all()):
            return name
    return None


def check_weights(state: Mapping[str, Tensor], stage: str, key: str) -> None:
    """Raises Diverged(``stage``, ``key``) if any weight or buffer of ``state`` is not finite."""
    name = first_nonfinite(state)
    if name is not None:
        raise Diverged(stage, key, f"non-finite values in {name}")


def check_outputs(logits: Tensor, stage: str, key: str, split: str) -> None:
    """Raises Diverged if ``logits`` (a model's outputs on ``split``) hold NaN or ±inf."""
    if not bool(torch.isfinite(logits).all()):
        raise Diverged(stage, key, f"non-finite outputs on the {split} split")
