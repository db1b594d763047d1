"""``nabla_tau``: ∇τ, gradient-based task-agnostic unlearning (Trippa et al., arXiv 2403.14339).

[code, official notebooks] Each forget batch is paired with the next retain batch and one
AdamW step is taken on ``L = α·ReLU(L_v − L_f)² + (1 − α)·L_r`` (batch-mean cross-entropies,
L_v the mean loss on held-out data). The ReLU makes the ascent on D_f stop as soon as the
forget loss reaches the unseen-data loss: forget data should look unseen, not be destroyed.
Nothing is tuned per setting — α₀ and the number of epochs E follow from the forget share
s = |D_f| / |D| and the batch counts.

Deviation from the official code (``val_source: val``): the official notebooks split the
*test* set 50/50 into a test half and D_v. Methods here never see the test split; they get
``data.val``, a validation split carved from the training data, disjoint from the test set
and from D_f / D_r. It plays D_v's role (the same "unseen data" loss) without touching the
examples the metrics are computed on.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Iterator, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearnbench.engine import batches, make_optimizer, predict, train_loop
from unlearnbench.methods.localize import Localization
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import ce, check_positive
from unlearnbench.methods.gradient import check_overrides, method_recipe
from unlearnbench.registry import METHODS

log = logging.getLogger("unlearnbench")


def alpha0(s: float, scale: float = 5.0 / 3.0) -> float:
    """Initial forget weight α₀ = scale · s (5/3 · s in the official code: 0.05 at s = 3 %)."""
    return scale * s


def forget_epochs(n_retain_batches: int, n_forget_batches: int, factor: float = 6.0) -> int:
    """E = int(n_R / (2·n_F) · factor): each epoch uses n_F retain batches, so with factor 6
    the retain set is seen about three times over the run."""
    return int(n_retain_batches / (2 * n_forget_batches) * factor)


def batch_count(n: int, batch_size: int) -> int:
    """Batches per pass with ``drop_last=False`` (the official DataLoaders): ceil(n / b)."""
    return math.ceil(n / batch_size)


def nabla_tau_loss(forget_loss: Tensor, retain_loss: Tensor, val_loss: float, alpha: float) -> Tensor:
    """α·ReLU(L_v − L_f)² + (1 − α)·L_r: ascent on L_f only while it is below L_v."""
    return alpha * F.relu(val_loss - forget_loss) ** 2 + (1 - alpha) * retain_loss


@METHODS.register("nabla_tau")
class NablaTau(Method):
    """∇τ with the official schedule; see the module docstring for the one deviation."""

    version = "2"  # 2: named random streams

    def __init__(self, lr: float = 1e-3, weight_decay: float = 0.01, batch_size: int = 256,
                 alpha0_scale: float = 5.0 / 3.0, epochs_factor: float = 6.0,
                 refresh_every: int = 5, bn_mode: str = "eval", final_lr_factor: float = 0.1,
                 val_source: str = "val", augment: Optional[str] = None, localize: str = "none",
                 localize_budget: float = 0.3):
        self.localization = Localization(localize, localize_budget)
        self.recipe_overrides = check_overrides({"augment": augment})
        for key, value in (("lr", lr), ("batch_size", batch_size), ("alpha0_scale", alpha0_scale),
                           ("epochs_factor", epochs_factor), ("refresh_every", refresh_every)):
            check_positive(value, f"method.{key}")
        if weight_decay is None or weight_decay < 0:
            raise ConfigError("method.weight_decay", f"must be >= 0, got {weight_decay}")
        if bn_mode not in ("eval", "train"):
            raise ConfigError("method.bn_mode", f"must be 'eval' or 'train', got '{bn_mode}'")
        if final_lr_factor is None or not 0 < final_lr_factor <= 1:
            raise ConfigError("method.final_lr_factor", f"must be in (0, 1], got {final_lr_factor}")
        if val_source != "val":
            raise ConfigError("method.val_source",
                              f"only 'val' (the validation split carved from train) is available to "
                              f"methods; the test split is reserved for metrics, got '{val_source}'")
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, int(batch_size)
        self.alpha0_scale, self.epochs_factor = alpha0_scale, epochs_factor
        self.refresh_every, self.bn_mode, self.final_lr_factor = int(refresh_every), bn_mode, final_lr_factor

    def unlearn(self, model, data, ctx):
        ctx = method_recipe(ctx, self.recipe_overrides)
        r, bs = ctx.recipe, self.batch_size
        n_r, n_f = batch_count(len(data.retain), bs), batch_count(len(data.forget), bs)
        a0 = alpha0(data.forget_share, self.alpha0_scale)
        epochs = forget_epochs(n_r, n_f, self.epochs_factor)
        if epochs < 1:  # s close to 1: the formula gives 0 epochs; one is the least that acts
            log.warning("nabla_tau: E = int(%d/(2*%d)*%g) = 0; running 1 epoch", n_r, n_f,
                        self.epochs_factor)
            epochs = 1
        restart_every = max(1, n_r // n_f)  # epochs until the retain stream is used up
        gen = ctx.generator("forget_retain_batches")
        state = {"alpha": a0, "val_loss": 0.0, "retain": iter(())}
        alphas: List[float] = []  # α, lr and step count of every epoch, kept for inspection
        lrs: List[float] = []
        steps: List[int] = []

        def retain_stream() -> Iterator:
            return batches(data.retain, bs, gen, augment=r.augment)

        def next_retain():
            try:
                return next(state["retain"])
            except StopIteration:  # only when n_F > n_R (s > 1/2): cycle instead of stopping
                state["retain"] = retain_stream()
                return next(state["retain"])

        def make_batches(epoch: int):
            if epoch % self.refresh_every == 0:
                state["val_loss"] = val_loss(model, data.val, ctx)
            if epoch % restart_every == 0:
                state["retain"] = retain_stream()
            alphas.append(state["alpha"])
            lrs.append(opt.param_groups[0]["lr"])
            steps.append(0)
            for fb in batches(data.forget, bs, gen, max_batches=r.max_batches, augment=r.augment):
                steps[-1] += 1
                yield fb, next_retain()

        def loss_fn(m, pair):
            forget_batch, retain_batch = pair
            return nabla_tau_loss(ce(m, forget_batch), ce(m, retain_batch), state["val_loss"],
                                  state["alpha"])

        opt = make_optimizer(model.parameters(), replace(r, optimizer="adamw",
                                                          weight_decay=self.weight_decay), self.lr)
        sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0,
                                                  end_factor=self.final_lr_factor, total_iters=epochs)

        def after_epoch(_epoch: int) -> None:
            state["alpha"] -= a0 / epochs
            sched.step()

        with self.localization.restrict(model, data, ctx) as hooks:
            train_loop(model, make_batches, loss_fn, opt, epochs, ctx, "nabla_tau", after_step=hooks,
                       after_epoch=after_epoch, train_mode=self.bn_mode == "train")
        stats = {"alpha0": a0, "epochs": epochs, "n_retain_batches": n_r, "n_forget_batches": n_f,
                 "alpha_final": state["alpha"], **self.localization.stats()}
        return Unlearned(model, stats, {"alphas": alphas, "lrs": lrs, "steps": steps})


def val_loss(model, split, ctx) -> float:
    """L_v: mean cross-entropy on D_v in eval mode, no gradient (the unseen-data target)."""
    logits = predict(model, split.x, ctx)
    return float(F.cross_entropy(logits, split.y))
