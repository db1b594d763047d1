"""Fast training on resident tensors: batches are index slices, no per-example Python."""

from __future__ import annotations

import logging
import math
import time
import typing
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import augment as aug
from unlearnbench.engine.context import RunContext
from unlearnbench.errors import ConfigError

if TYPE_CHECKING:
    from unlearnbench.engine.train_log import TrainLog

Batch = Tuple[Tensor, Tensor]
log = logging.getLogger("unlearnbench")

_LR_SCALINGS = ("none", "linear", "sqrt")
# An epoch slower than this gets a step-level progress bar from the next epoch on (the epoch
# bar alone would sit still for long stretches).
STEP_BAR_AFTER_S = 2.0
# auto: bf16 autocast on CUDA, float32 elsewhere; bf16 forces it (on CPU too, to test the CUDA path).
_AMP_MODES = ("auto", "bf16", "none")
# (key, low, high): the closed range a recipe value must lie in.
_RANGES = (("momentum", 0.0, 1.0), ("weight_decay", 0.0, math.inf), ("label_smoothing", 0.0, 1.0),
           ("final_lr_fraction", 0.0, 1.0), ("warmup_epochs", 0.0, math.inf))


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
    lr_scaling: str = "none"
    base_batch_size: int = 128
    amp: str = "auto"
    channels_last: Optional[bool] = None  # None: image batches channels_last on CUDA only

    @classmethod
    def from_cfg(cls, cfg: Dict[str, Any]) -> "Recipe":
        from unlearnbench.registry import coerce

        hints = typing.get_type_hints(cls)
        unknown = set(cfg) - set(hints)
        if unknown:
            raise ConfigError(f"train.{sorted(unknown)[0]}", f"unknown key; the recipe takes {sorted(hints)}")
        recipe = cls(**{k: coerce(v, hints[k], f"train.{k}") for k, v in cfg.items()})
        recipe.validate()
        return recipe

    def cache_material(self) -> Dict[str, Any]:
        """The recipe's part of a trained model's cache key: every field that can change it.

        Keys stay stable across versions where a new field changes nothing at its default.
        """
        m = {f.name: getattr(self, f.name) for f in fields(self)
             if f.name not in ("eval_batch_size", "compile", "channels_last")}  # layout: same values
        if m["amp"] == "auto":  # the default on every device: keep older cache keys valid
            del m["amp"]
        if m["lr_scaling"] == "none":  # then they change nothing: keep older cache keys valid
            del m["lr_scaling"], m["base_batch_size"]
        if m["augment"] != "none":  # augmentation draws are per epoch since engine v2
            m["augment_draws"] = "per_epoch"
        return m

    def validate(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError("train.optimizer", f"'{self.optimizer}' is not one of {sorted(_OPTIMIZERS)}")
        if self.schedule not in ("cosine", "linear", "constant", "step"):
            raise ConfigError("train.schedule", f"'{self.schedule}' is not cosine|linear|step|constant")
        if self.augment not in aug.MODES:
            raise ConfigError("train.augment", f"'{self.augment}' is not none|crop_flip|flip")
        if self.lr_scaling not in _LR_SCALINGS:
            raise ConfigError("train.lr_scaling", f"'{self.lr_scaling}' is not none|linear|sqrt")
        if self.amp not in _AMP_MODES:
            raise ConfigError("train.amp", f"'{self.amp}' is not one of {list(_AMP_MODES)}")
        for key in ("epochs", "batch_size", "base_batch_size", "eval_batch_size", "lr"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"train.{key}", f"must be positive, got {getattr(self, key)}")
        if self.max_batches is not None and self.max_batches <= 0:  # 0 steps would cache untrained models
            raise ConfigError("train.max_batches", f"must be a positive count or null, got {self.max_batches}")
        for key, low, high in _RANGES:
            value = getattr(self, key)
            if not low <= value <= high:
                bounds = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
                raise ConfigError(f"train.{key}", f"must be {bounds}, got {value}")

    @property
    def scaled_lr(self) -> float:
        """``lr`` scaled for ``batch_size`` relative to ``base_batch_size``.

        ``linear`` (Goyal et al., 2017) suits SGD, ``sqrt`` suits Adam-type optimizers;
        with ``none`` the configured ``lr`` is used as is, whatever the batch size.
        """
        ratio = self.batch_size / self.base_batch_size
        if self.lr_scaling == "linear":
            return self.lr * ratio
        if self.lr_scaling == "sqrt":
            return self.lr * math.sqrt(ratio)
        return self.lr


def batches(split: Split, batch_size: int, generator: Optional[torch.Generator] = None,
            shuffle: bool = True, drop_last: bool = False, max_batches: Optional[int] = None,
            augment: str = "none", channels_last: Optional[bool] = None) -> Iterator[Batch]:
    """Yields (x, y) slices of a resident split in a seeded random order.

    The epoch's order and augmentation draws are made on the host in one go and copied
    once (asynchronously on CUDA), so the step loop never waits for a host-device copy.
    Image batches come out channels_last if ``channels_last`` (None: on CUDA), the layout
    the models are kept in.
    """
    n = len(split)
    device = split.y.device
    order, draws = epoch_draws(n, generator, shuffle, augment, device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i, start in enumerate(range(0, stop, batch_size)):
        if max_batches is not None and i >= max_batches:
            return
        if order is None:
            xb, yb = split.x[start:start + batch_size], split.y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            xb, yb = split.x[idx], split.y[idx]
        d = None if draws is None else draws[start:start + batch_size]
        yield to_model_layout(aug.apply(xb, d), channels_last), yb


def epoch_draws(n: int, generator: Optional[torch.Generator], shuffle: bool, augment: str,
                device: torch.device) -> Tuple[Optional[Tensor], Optional[aug.AugmentDraws]]:
    """One epoch's random order and augmentation choices, drawn in a fixed order, on ``device``."""
    order = torch.randperm(n, generator=generator) if shuffle else None
    draws = aug.draw(n, augment, generator)
    if device.type == "cuda":  # pinned + non_blocking: the copy does not stall the host
        order = None if order is None else order.pin_memory().to(device, non_blocking=True)
        draws = None if draws is None else draws.pin_memory().to(device, non_blocking=True)
    elif device.type != "cpu":
        order = None if order is None else order.to(device)
        draws = None if draws is None else draws.to(device)
    return order, draws


def to_model_layout(x: Tensor, channels_last: Optional[bool] = None) -> Tensor:
    """channels_last for image batches if ``channels_last`` (None: on CUDA, where the
    convolutions run fastest in it); else ``x``."""
    if (x.is_cuda if channels_last is None else channels_last) and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def n_batches(n: int, batch_size: int, max_batches: Optional[int] = None) -> int:
    count = math.ceil(n / batch_size)
    return count if max_batches is None else min(count, max_batches)


_OPTIMIZERS = {
    "sgd": lambda p, r, lr: torch.optim.SGD(p, lr=lr, momentum=r.momentum, weight_decay=r.weight_decay),
    "adam": lambda p, r, lr: torch.optim.Adam(p, lr=lr, weight_decay=r.weight_decay),
    "adamw": lambda p, r, lr: torch.optim.AdamW(p, lr=lr, weight_decay=r.weight_decay),
}


def make_optimizer(params: Iterable[Tensor], recipe: Recipe, lr: Optional[float] = None):
    """The recipe's optimizer at ``lr``, or at the recipe's batch-size-scaled lr when None."""
    return _OPTIMIZERS[recipe.optimizer](list(params), recipe, recipe.scaled_lr if lr is None else lr)


def lr_factor(recipe: Recipe, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak lr at 0-based ``step``: linear warm-up, then the decay."""
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

    return factor


def make_scheduler(optimizer, recipe: Recipe, total_steps: int):
    """Per-step LR multiplier: linear warm-up, then cosine / linear / step decay."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(recipe, total_steps))


def compile_model(model: nn.Module, ctx: RunContext, enabled: bool, backend: str = "inductor"
                  ) -> nn.Module:
    """``torch.compile(model)`` on CUDA when ``enabled``; the model itself otherwise.

    The compiled wrapper shares the model's parameters, so training through it trains the
    model; callers keep and return the plain model (clean state-dict keys). On CPU the
    flag is ignored: compiling a small model takes longer there than it saves. ``backend``
    exists for tests (``eager`` exercises the wrapper without a compiler).
    """
    if not enabled:
        return model
    if not ctx.on_cuda and backend == "inductor":
        log.info("train.compile=true is ignored on CPU (compiling costs more than it saves here)")
        return model
    return torch.compile(model, backend=backend)


def train_loop(model: nn.Module, make_batches: Callable[[int], Iterable[Any]],
               loss_fn: Callable[[nn.Module, Any], Tensor], optimizer, epochs: int,
               ctx: RunContext, desc: str, scheduler=None,
               after_step: Sequence[Callable[[], None]] = (),
               after_epoch: Optional[Callable[[int], None]] = None,
               train_mode: bool = True, curve: Optional["TrainLog"] = None) -> nn.Module:
    """Runs ``epochs`` passes; ``make_batches(epoch)`` yields whatever ``loss_fn`` takes.

    The loss is summed on the device and read once per epoch, so the step loop never
    waits for the host. ``after_step`` hooks run after every optimizer step (e.g. to keep
    masked-out parameters bit-identical). ``curve`` records each epoch's steps, mean loss
    and validation accuracy (train_log.csv).
    """
    model.train(train_mode)
    bar = ctx.progress(range(epochs), desc=desc)
    step_bar_total = None  # set once an epoch proved slow: later epochs get a step-level bar
    for epoch in bar:
        total, steps, started = torch.zeros((), device=ctx.device), 0, time.perf_counter()
        for batch in _with_step_bar(make_batches(epoch), ctx, desc, epoch, step_bar_total):
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
        if curve is not None:
            curve.record(model, epoch, steps, total)
        if ctx.show_progress and steps:
            bar.set_postfix(loss=f"{(total / steps).item():.4f}")
            if time.perf_counter() - started > STEP_BAR_AFTER_S:
                step_bar_total = steps
    model.eval()
    return model


def _with_step_bar(batches: Iterable[Any], ctx: RunContext, desc: str, epoch: int,
                   total: Optional[int]) -> Iterable[Any]:
    """``batches`` behind a per-step progress bar when ``total`` is known (slow epochs only)."""
    if total is None:
        return batches
    return ctx.progress(batches, desc=f"{desc} epoch {epoch + 1}", total=total)


def cross_entropy(recipe_smoothing: float = 0.0) -> Callable[[nn.Module, Batch], Tensor]:
    def loss(model: nn.Module, batch: Batch) -> Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, label_smoothing=recipe_smoothing)

    return loss


def fit(model: nn.Module, split: Split, recipe: Recipe, ctx: RunContext, desc: str,
        epochs: Optional[int] = None, lr: Optional[float] = None, stream: str = "train_batches",
        params: Optional[List[Tensor]] = None, after_step: Sequence[Callable[[], None]] = (),
        after_epoch: Optional[Callable[[int], None]] = None,
        curve: Optional["TrainLog"] = None) -> nn.Module:
    """Supervised training of ``model`` on ``split`` with the recipe (original, oracle, finetune).

    ``lr=None`` uses the recipe's batch-size-scaled lr; ``train.compile`` compiles the
    forward on CUDA. ``after_epoch(epoch)`` runs after each epoch's last step (e.g. to
    record per-example learning events); it must not draw from the batch stream. ``curve``
    collects the per-epoch rows of train_log.csv.
    Returns ``model`` itself (never the compiled wrapper).
    """
    epochs = recipe.epochs if epochs is None else epochs
    gen = ctx.generator(stream)
    optimizer = make_optimizer(params if params is not None else model.parameters(), recipe, lr)
    per_epoch = n_batches(len(split), recipe.batch_size, recipe.max_batches)
    scheduler = make_scheduler(optimizer, recipe, max(1, per_epoch * epochs))
    net = compile_model(model, ctx, recipe.compile)
    train_loop(
        net,
        lambda _: batches(split, recipe.batch_size, gen, max_batches=recipe.max_batches,
                          augment=recipe.augment, channels_last=ctx.channels_last),
        cross_entropy(recipe.label_smoothing), optimizer, epochs, ctx, desc, scheduler,
        after_step=after_step, after_epoch=after_epoch, curve=curve,
    )
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, ctx: RunContext, batch_size: Optional[int] = None) -> Tensor:
    """Float32 logits for every row of ``x`` in eval mode, in large no-grad batches.

    The logits stay on the device (no host copy); inputs go channels_last if the run's are.
    """
    batch_size = batch_size or ctx.recipe.eval_batch_size
    was_training = model.training
    model.eval()
    outs = []
    with ctx.autocast():
        for start in range(0, x.shape[0], batch_size):
            outs.append(model(to_model_layout(x[start:start + batch_size], ctx.channels_last)).float())
    model.train(was_training)
    if not outs:  # an empty split: the model's own output width, no rows
        with ctx.autocast():
            return model(to_model_layout(x[:0], ctx.channels_last)).float()
    return torch.cat(outs)
