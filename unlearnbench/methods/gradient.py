"""``GradientMethod``: the base of methods that take gradient steps for some epochs at some lr.

They share the keys ``epochs``, ``lr``, ``batch_size``, the inner-loop recipe overrides
(``optimizer``, ``momentum``, ``weight_decay``, ``schedule``, ``final_lr_fraction``,
``augment``; null = the train recipe's), ``bn_mode``, ``localize`` and ``localize_budget`` (YAML:
``conf/method/_gradient.yaml``), the checks on them and the localized training loop; a
subclass writes its batches and its loss in ``unlearn_steps``.

The overrides exist because papers run each baseline with its own optimizer settings (DEL's
GA at a constant lr, ∇τ's Amnesiac with Adam, no augmentation while unlearning), while the
train recipe describes how the original and the oracle were trained.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from unlearnbench.engine.context import RunContext
from unlearnbench.engine.loop import Recipe
from unlearnbench.engine.train_log import TrainLog
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import check_positive, run_epochs
from unlearnbench.methods.localize import Localization, ParamMask, check_choice

# Keys of the train recipe a gradient method may set for its own inner loop.
RECIPE_KEYS = ("optimizer", "momentum", "weight_decay", "schedule", "final_lr_fraction", "augment")


def check_overrides(overrides: dict) -> dict:
    """The non-null ``overrides``, checked as train.* would be but named method.*."""
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in ("momentum", "weight_decay"):
        if given.get(key, 0) < 0:
            raise ConfigError(f"method.{key}", f"must be >= 0 or null, got {given[key]}")
    if not 0 <= given.get("final_lr_fraction", 0) <= 1:
        raise ConfigError("method.final_lr_fraction", f"must be in [0, 1] or null, got {given['final_lr_fraction']}")
    try:
        replace(Recipe(), **given).validate()
    except ConfigError as err:  # name the key the user set, not train.*
        raise ConfigError(err.key.replace("train.", "method."), err.message) from err
    return given


def method_recipe(ctx: RunContext, overrides: dict) -> RunContext:
    """``ctx`` whose recipe carries the method's (checked, non-null) ``overrides``."""
    return replace(ctx, recipe=replace(ctx.recipe, **overrides)) if overrides else ctx


class GradientMethod(Method):
    """Keys every gradient-based method takes; per-method defaults live in its YAML."""

    def __init__(self, epochs: int = 1, lr: float = 0.01, batch_size: Optional[int] = None,
                 optimizer: Optional[str] = None, momentum: Optional[float] = None,
                 weight_decay: Optional[float] = None, schedule: Optional[str] = None,
                 final_lr_fraction: Optional[float] = None, augment: Optional[str] = None,
                 bn_mode: str = "train", localize: str = "none", localize_budget: float = 0.3):
        check_positive(epochs, "method.epochs")
        check_positive(lr, "method.lr")
        if batch_size is not None:
            check_positive(batch_size, "method.batch_size")
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.recipe_overrides = check_overrides(dict(
            optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
            final_lr_fraction=final_lr_fraction, augment=augment))
        self.bn_mode = check_choice(bn_mode, ("train", "eval"), "method.bn_mode")
        self.localization = Localization(localize, localize_budget)

    def unlearn(self, model, data, ctx):
        return self.unlearn_steps(model, data, method_recipe(ctx, self.recipe_overrides))

    def unlearn_steps(self, model, data, ctx: RunContext) -> Unlearned:
        """The method's batches and loss; ``ctx.recipe`` already carries its overrides."""
        raise NotImplementedError

    def train(self, model, data, ctx, make_batches, loss, steps: int, desc: Optional[str] = None,
              base: Optional[ParamMask] = None, **loop) -> Unlearned:
        """``self.epochs`` epochs of ``loss`` at ``self.lr``, localized; returns the model and
        the share of parameters that could move (when restricted)."""
        curve = TrainLog(data.val, ctx)
        with self.localization.restrict(model, data, ctx, base=base) as hooks:
            run_epochs(model, make_batches, loss, ctx, desc or self.registry_name, self.epochs,
                       self.lr, steps, after_step=hooks, train_mode=self.bn_mode == "train",
                       curve=curve, **loop)
        return Unlearned(model, self.localization.stats(), train_log=curve.rows)
