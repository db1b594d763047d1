"""Losses and loops shared by methods, so no method re-implements a training loop."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import RunContext, batches, make_optimizer, make_scheduler, train_loop
from unlearnbench.engine.loop import Batch, n_batches
from unlearnbench.errors import ConfigError


def check_positive(value, key: str) -> None:
    """Refuses None, NaN, infinities and values <= 0, naming ``key``."""
    if value is None or not math.isfinite(value) or value <= 0:
        raise ConfigError(key, f"must be a positive finite number, got {value}")


def split_batches(split: Split, ctx: RunContext, batch_size: Optional[int], stream: str,
                  augment: bool = True) -> Callable[[int], Iterator[Batch]]:
    """Per-epoch batch factory over ``split`` with the recipe's cap and augmentation."""
    r = ctx.recipe
    gen = ctx.generator(stream)
    return lambda _: batches(split, batch_size or r.batch_size, gen, max_batches=r.max_batches,
                             augment=r.augment if augment else "none", channels_last=ctx.channels_last)


def paired_batches(primary: Split, secondary: Split, ctx: RunContext, batch_size: Optional[int],
                   stream: str) -> Callable[[int], Iterator[Tuple[Batch, Batch]]]:
    """Each batch of ``primary`` paired with the next of ``secondary``, which cycles."""
    r = ctx.recipe
    bs = batch_size or r.batch_size
    gen = ctx.generator(stream)

    def cycle() -> Iterator[Batch]:
        while True:
            yield from batches(secondary, bs, gen, augment=r.augment, channels_last=ctx.channels_last)

    sec = cycle()
    return lambda _: zip(batches(primary, bs, gen, max_batches=r.max_batches, augment=r.augment,
                                 channels_last=ctx.channels_last), sec)


def run_epochs(model: nn.Module, make_batches, loss_fn, ctx: RunContext, desc: str, epochs: int,
               lr: float, steps_per_epoch: int, optimizer: Optional[str] = None,
               schedule: Optional[str] = None, params: Optional[Sequence[Tensor]] = None,
               after_step=(), train_mode: bool = True,
               weight_decay: Optional[float] = None, curve=None) -> nn.Module:
    """A method's inner loop with the recipe's optimizer (or ``optimizer``) at ``lr``.

    ``curve`` (a ``TrainLog``) records its per-epoch rows.

    ``weight_decay`` None keeps the recipe's; methods whose official optimizer has none pass 0.
    """
    r = ctx.recipe
    recipe = replace(r, optimizer=optimizer or r.optimizer, schedule=schedule or r.schedule,
                     weight_decay=r.weight_decay if weight_decay is None else weight_decay)
    opt = make_optimizer(params if params is not None else model.parameters(), recipe, lr)
    sched = make_scheduler(opt, recipe, max(1, steps_per_epoch * epochs))
    return train_loop(model, make_batches, loss_fn, opt, epochs, ctx, desc, sched, after_step=after_step,
                      train_mode=train_mode, curve=curve)


def steps_for(split: Split, ctx: RunContext, batch_size: Optional[int]) -> int:
    return n_batches(len(split), batch_size or ctx.recipe.batch_size, ctx.recipe.max_batches)


def ce(model: nn.Module, batch: Batch) -> Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def random_wrong_labels(y: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """Uniformly random labels that always differ from ``y``."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % num_classes


def random_any_labels(y: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """Uniformly random labels over all classes (the true one included)."""
    return torch.randint(0, num_classes, y.shape, generator=generator).to(y.device)


def concat(*splits: Split) -> Split:
    return Split(torch.cat([s.x for s in splits]), torch.cat([s.y for s in splits]))


def random_subset(split: Split, fraction: float, generator: torch.Generator) -> Split:
    """A uniformly random ``fraction`` of ``split`` (at least one row), drawn without replacement."""
    n = max(1, int(round(fraction * len(split))))
    idx = torch.randperm(len(split), generator=generator)[:n].to(split.y.device)
    return split.subset(idx)


def cycle(make_batches: Callable[[int], Iterator[Batch]]) -> Iterator[Batch]:
    """Endless batches: epoch after epoch of ``make_batches`` (a ``split_batches`` factory)."""
    epoch = 0
    while True:
        yield from make_batches(epoch)
        epoch += 1


def capped(steps: int, ctx: RunContext) -> int:
    """``steps`` under the recipe's ``max_batches`` cap (debug=smoke), for loops counted in steps."""
    cap = ctx.recipe.max_batches
    return steps if cap is None else min(steps, cap)


def check_nonnegative(value, key: str) -> None:
    if value is None or value < 0:
        raise ConfigError(key, f"must be >= 0, got {value}")
