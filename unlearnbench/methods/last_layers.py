"""The last k layers of a network, as Goel et al. count them, for ``eu_k`` and ``cf_k``.

Official code: github.com/shash42/Evaluating-Inexact-Unlearning, ``src/methods.py``
(``getRetrainLayers``, ``resetFinalResnet``) and ``src/models.py`` (``_reinit``), commit
a45fe023216f407e947b0c87c3ea2c8229f1d5e5. Layers are the Conv2d, Linear and BatchNorm
modules in definition order; walking them from the output backwards, every one visited is
made trainable until k Conv2d/Linear layers have been visited. So a BatchNorm that follows
the k-th counted layer is included and one that precedes it is not; everything else is frozen.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List

import torch
from torch import nn

from unlearnbench.errors import ConfigError

COUNTED = (nn.Conv2d, nn.Linear)
LAYERS = COUNTED + (nn.BatchNorm1d, nn.BatchNorm2d)


def last_layers(model: nn.Module, k: int) -> List[nn.Module]:
    """The modules Goel et al. train for "the last k layers", output first."""
    layers = [m for m in model.modules() if isinstance(m, LAYERS)]
    counted = sum(isinstance(m, COUNTED) for m in layers)
    if not 1 <= k <= counted:
        raise ConfigError("method.k", f"must be in [1, {counted}] (Conv2d/Linear layers of this model), got {k}")
    out, done = [], 0
    for module in reversed(layers):
        out.append(module)
        done += isinstance(module, COUNTED)
        if done >= k:
            break
    return out


@torch.no_grad()
def reinitialise(modules: List[nn.Module], generator: torch.Generator) -> None:
    """Goel et al.'s ``_reinit`` on the counted layers: Kaiming-normal weights, zero biases.

    BatchNorm modules in the span keep their values (the official code only resets Conv/Linear).
    """
    for m in modules:
        if isinstance(m, COUNTED):
            fresh = torch.empty_like(m.weight, device="cpu")
            nn.init.kaiming_normal_(fresh, generator=generator)
            m.weight.copy_(fresh)
            if m.bias is not None:
                m.bias.zero_()


@contextlib.contextmanager
def train_only(model: nn.Module, modules: List[nn.Module]) -> Iterator[List[torch.Tensor]]:
    """Freezes every parameter outside ``modules`` while open; yields the trainable ones."""
    before = {p: p.requires_grad for p in model.parameters()}
    trainable = {id(p) for m in modules for p in m.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    try:
        yield [p for p in model.parameters() if p.requires_grad]
    finally:
        for p, flag in before.items():
            p.requires_grad_(flag)


def trainable_fraction(model: nn.Module, modules: List[nn.Module]) -> float:
    n = sum(p.numel() for m in modules for p in m.parameters())
    return n / max(1, sum(p.numel() for p in model.parameters()))
