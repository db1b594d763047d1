"""Fast training on resident tensors: batches are index slices, no per-example Python."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine.augment import augment_batch
from unlearnbench.engine.context import RunContext
from unlearnbench.errors import ConfigError

Batch = Tuple[Tensor, Tensor]


@dataclass
class Recipe:
    """The training recipe (config group ``train``), shared by original, oracle and methods."""

    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    final_lr_fraction: float = 0.0
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: str = "none"
    max_batches: Optional[int] = None
    eval_batch_size: int = 2048
    compile: bool = False

    @classmethod
    def from_cfg(cls, cfg: Dict[str, Any]) -> "Recipe":
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise ConfigError(f"train.{sorted(unknown)[0]}", f"unknown key; the recipe takes {sorted(known)}")
        recipe = cls(**cfg)
        recipe.validate()
        return recipe

    def validate(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError("train.optimizer", f"'{self.optimizer}' is not one of {sorted(_OPTIMIZERS)}")
        if self.schedule not in ("cosine", "linear", "constant", "step"):
            raise ConfigError("train.schedule", f"'{self.schedule}' is not cosine|linear|step|constant")
        if self.augment not in ("none", "crop_flip", "flip"):
            raise ConfigError("train.augment", f"'{self.augment}' is not none|crop_flip|flip")
        for key in ("epochs", "batch_size"):
            if int(getattr(self, key)) <= 0:
                raise ConfigError(f"train.{key}", "must be positive")


def batches(split: Split, batch_size: int, generator: Optional[torch.Generator] = None,
            shuffle: bool = True, drop_last: bool = False, max_batches: Optional[int] = None,
            augment: str = "none") -> Iterator[Batch]:
    """Yields (x, y) slices of a resident split in a seeded random order."""
    n = len(split)
    order = torch.randperm(n, generator=generator).to(split.y.device) if shuffle else None
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i, start in enumerate(range(0, stop, batch_size)):
        if max_batches is not None and i >= max_batches:
            return
        if order is None:
            xb, yb = split.x[start:start + batch_size], split.y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            xb, yb = split.x[idx], split.y[idx]
        yield augment_batch(xb, augment, generator), yb


def n_batches(n: int, batch_size: int, max_batches: Optional[int] = None) -> int:
    count = math.ceil(n / batch_size)
    return count if max_batches is None else min(count, max_batches)


_OPTIMIZERS = {
    "sgd": lambda p, r, lr: torch.optim.SGD(p, lr=lr, momentum=r.momentum, weight_decay=r.weight_decay),
    "adam": lambda p, r, lr: torch.optim.Adam(p, lr=lr, weight_decay=r.weight_decay),
    "adamw": lambda p, r, lr: torch.optim.AdamW(p, lr=lr, weight_decay=r.weight_decay),
}


def make_optimizer(params: Iterable[Tensor], recipe: Recipe, lr: Optional[float] = None):
    return _OPTIMIZERS[recipe.optimizer](list(params), recipe, recipe.lr if lr is None else lr)


def make_scheduler(optimizer, recipe: Recipe, total_steps: int):
    """Per-step LR multiplier: linear warm-up, then cosine / linear / step decay."""
    warmup = int(recipe.warmup_epochs * total_steps / max(recipe.epochs, 1))
    floor = recipe.final_lr_fraction

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if recipe.schedule == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        if recipe.schedule == "linear":
            return 1 - (1 - floor) * t
        if recipe.schedule == "step":  # x0.1 at 50% and 75% of training
            return 0.1 ** ((t >= 0.5) + (t >= 0.75))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_loop(model: nn.Module, make_batches: Callable[[int], Iterable[Any]],
               loss_fn: Callable[[nn.Module, Any], Tensor], optimizer, epochs: int,
               ctx: RunContext, desc: str, scheduler=None,
               after_step: Sequence[Callable[[], None]] = (),
               after_epoch: Optional[Callable[[int], None]] = None,
               train_mode: bool = True) -> nn.Module:
    """Runs ``epochs`` passes; ``make_batches(epoch)`` yields whatever ``loss_fn`` takes.

    The loss is summed on the device and read once per epoch, so the step loop never
    waits for the host. ``after_step`` hooks run after every optimizer step (e.g. to keep
    masked-out parameters bit-identical).
    """
    model.train(train_mode)
    bar = ctx.progress(range(epochs), desc=desc)
    for epoch in bar:
        total, steps = torch.zeros((), device=ctx.device), 0
        for batch in make_batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            with ctx.autocast():
                loss = loss_fn(model, batch)
            loss.backward()
            optimizer.step()
            for hook in after_step:
                hook()
            if scheduler is not None:
                scheduler.step()
            total += loss.detach().float()
            steps += 1
        if after_epoch is not None:
            after_epoch(epoch)
        if ctx.show_progress and steps:
            bar.set_postfix(loss=f"{(total / steps).item():.4f}")
    model.eval()
    return model


def cross_entropy(recipe_smoothing: float = 0.0) -> Callable[[nn.Module, Batch], Tensor]:
    def loss(model: nn.Module, batch: Batch) -> Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, label_smoothing=recipe_smoothing)

    return loss


def fit(model: nn.Module, split: Split, recipe: Recipe, ctx: RunContext, desc: str,
        epochs: Optional[int] = None, lr: Optional[float] = None, stream: int = 0,
        params: Optional[List[Tensor]] = None, after_step: Sequence[Callable[[], None]] = ()
        ) -> nn.Module:
    """Supervised training of ``model`` on ``split`` with the recipe (original, oracle, finetune)."""
    epochs = recipe.epochs if epochs is None else epochs
    gen = ctx.generator(stream)
    optimizer = make_optimizer(params if params is not None else model.parameters(), recipe, lr)
    per_epoch = n_batches(len(split), recipe.batch_size, recipe.max_batches)
    scheduler = make_scheduler(optimizer, recipe, max(1, per_epoch * epochs))
    return train_loop(
        model,
        lambda _: batches(split, recipe.batch_size, gen, max_batches=recipe.max_batches,
                          augment=recipe.augment),
        cross_entropy(recipe.label_smoothing), optimizer, epochs, ctx, desc, scheduler,
        after_step=after_step,
    )


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, ctx: RunContext, batch_size: Optional[int] = None) -> Tensor:
    """Float32 logits for every row of ``x`` in eval mode, in large no-grad batches."""
    batch_size = batch_size or ctx.recipe.eval_batch_size
    was_training = model.training
    model.eval()
    outs = []
    with ctx.autocast():
        for start in range(0, x.shape[0], batch_size):
            outs.append(model(x[start:start + batch_size]).float())
    model.train(was_training)
    if not outs:
        return torch.zeros(0, ctx.num_classes, device=x.device)
    return torch.cat(outs)
