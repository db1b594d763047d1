"""``relearn_epochs``: how many epochs of finetuning on D_f bring the forget accuracy back.

The relearn-time attack (Golatkar et al. 2020; reported as a metric by ERASURE): knowledge
that was only suppressed comes back faster than knowledge that was never learned. A copy of
the model is trained on D_f alone — the recipe's optimizer at a constant ``lr``, batches
of D_f drawn from the same named stream for every role — and after each epoch its D_f
accuracy is compared with the original's, FA_o.

Convention: the number of whole epochs after which FA ≥ FA_o; 0 if the model already
reaches it (the original's row is 0 by construction); ``max_epochs`` + 1 when it never does
within the cap of ``max_epochs`` (the value is censored there, not measured). The oracle's
row is the reference: a model that unlearned like retraining needs about as many epochs.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import List, Optional

import torch
from torch import nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import RunContext, batches, make_optimizer, predict, train_loop
from unlearnbench.engine.context import stream_seed
from unlearnbench.engine.loop import cross_entropy
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS


def epochs_to_reach(accuracies: List[float], target: float, max_epochs: int) -> int:
    """First index e with accuracies[e] ≥ target (accuracies[0] before any epoch), else cap + 1."""
    for epoch, acc in enumerate(accuracies[:max_epochs + 1]):
        if acc >= target:
            return epoch
    return max_epochs + 1


def relearn_curve(model: nn.Module, forget: Split, target: float, max_epochs: int, lr: float,
                  batch_size: Optional[int], ctx: RunContext) -> List[float]:
    """D_f accuracy of a copy of ``model`` before and after each epoch of CE on D_f, until ``target``."""
    accuracies = [_accuracy(model, forget, ctx)]
    if accuracies[0] >= target:
        return accuracies
    model = copy.deepcopy(model)  # the evaluated model itself stays untouched
    recipe = replace(ctx.recipe, schedule="constant")
    opt = make_optimizer(model.parameters(), recipe, lr)
    gen = ctx.generator("relearn_batches")
    loss = cross_entropy()
    # Dropout draws from a stream of its own, not the global RNG: every role relearns under
    # the same draws, and a role whose metrics come from the reference cache (not evaluated
    # here) cannot shift the draws of the roles evaluated after it.
    devices = [ctx.device] if ctx.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(stream_seed(ctx.seed, "relearn_dropout"))
        for _ in range(max_epochs):
            train_loop(model, lambda _: batches(forget, batch_size or recipe.batch_size, gen,
                                                max_batches=recipe.max_batches), loss, opt, 1, ctx, "relearn")
            accuracies.append(_accuracy(model, forget, ctx))
            if accuracies[-1] >= target:
                break
    return accuracies


def _accuracy(model: nn.Module, split: Split, ctx: RunContext) -> float:
    return float(predict(model, split.x, ctx).argmax(1).eq(split.y).float().mean())


@EVALUATORS.register("relearn_epochs")
class RelearnEpochs(Evaluator):
    reusable_reference = True
    metrics = {"relearn_epochs": Metric(None, "epochs of finetuning on D_f until forget accuracy ≥ the original's "
                                              "(0 = already there; max_epochs + 1 = not within the cap); "
                                              "closer to the oracle is better")}

    def __init__(self, max_epochs: int = 10, lr: float = 0.01, batch_size: Optional[int] = None):
        if max_epochs is None or max_epochs < 1:
            raise ConfigError("eval.params.relearn_epochs.max_epochs", f"must be >= 1, got {max_epochs}")
        if lr is None or lr <= 0:
            raise ConfigError("eval.params.relearn_epochs.lr", f"must be positive, got {lr}")
        if batch_size is not None and batch_size <= 0:
            raise ConfigError("eval.params.relearn_epochs.batch_size", f"must be positive or null, got {batch_size}")
        self.max_epochs, self.lr, self.batch_size = max_epochs, lr, batch_size

    def evaluate(self, model, ctx):
        target = ctx.original.accuracy("forget")
        curve = relearn_curve(model.model, model.splits["forget"], target, self.max_epochs, self.lr,
                              self.batch_size, ctx.run)
        return {"relearn_epochs": float(epochs_to_reach(curve, target, self.max_epochs))}
