"""``scrub``: SCRUB, teacher-student max-min unlearning (Kurmanji et al., NeurIPS 2023).

Written from the paper (its code's licence forbids reuse; it was not consulted). [paper]
The original model is a frozen teacher; the student (the model being unlearned) starts as
a copy of it and alternates two kinds of epochs with one SGD optimizer:

* max-epoch on D_f: maximise d(x) = KL(p_teacher(x) ‖ p_student(x)), i.e. disobey the
  teacher on the data to forget;
* min-epoch on D_r: minimise α·KL(p_teacher ‖ p_student) + γ·CE(student, y), i.e. stay with
  the teacher (and the labels) on the data to keep.

Max-epochs run only in the first ``max_steps`` epochs; the remaining min-epochs repair the
utility the max-steps cost. Probabilities are softened with temperature T and the KL is
scaled by T² (Hinton et al.'s distillation convention, so gradients keep their size across
T) [reconstructed: the paper writes the KL without temperature details].

Checked against the official code afterwards (meghdadk/SCRUB@98ffb11, the ∇τ notebook's
copy): the lr is multiplied by ``lr_decay_rate`` once for every entry of
``lr_decay_epochs`` the 1-based epoch exceeds (helper/util.py:22-30), and gradient clipping
is commented out (helper/loops.py:264), so ``max_grad_norm`` defaults to null. The max
objective is unbounded: on Fashion-MNIST (10 % random or class_fraction) the logits
overflowed to inf within the first max-epochs, which is why the key exists; the Fashion
table pins 1.0 (conf/recipe/fashion/scrub.yaml).

SCRUB+R (``rewind: true``, the paper's variant for random forget sets): keep the model
after every epoch and return the one whose forget-set error is closest to the final model's
error on validation examples of the forget set's classes (MIA_experiments.ipynb, cell 18).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.engine import make_optimizer, predict, train_loop
from unlearnbench.methods.localize import Localization
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import check_positive, split_batches
from unlearnbench.methods.gradient import check_overrides, method_recipe
from unlearnbench.registry import METHODS


def distill_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """T²·KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch."""
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temperature ** 2


@METHODS.register("scrub")
class Scrub(Method):
    version = "2"  # 2: named random streams

    def __init__(self, max_steps: int = 2, min_steps: int = 3, lr: float = 5e-4,
                 momentum: float = 0.9, weight_decay: float = 5e-4, alpha: float = 0.001,
                 gamma: float = 0.99, temperature: float = 4.0, batch_size: Optional[int] = 128,
                 forget_batch_size: Optional[int] = 32, max_grad_norm: Optional[float] = None,
                 lr_decay_epochs: Sequence[int] = (), lr_decay_rate: float = 0.1,
                 rewind: bool = False, augment: Optional[str] = None,
                 localize: str = "none", localize_budget: float = 0.3):
        self.localization = Localization(localize, localize_budget)
        self.recipe_overrides = check_overrides({"augment": augment})
        if not 0 < lr_decay_rate <= 1:
            raise ConfigError("method.lr_decay_rate", f"must be in (0, 1], got {lr_decay_rate}")
        self.lr_decay_epochs, self.lr_decay_rate = [int(e) for e in lr_decay_epochs], lr_decay_rate
        self.rewind = bool(rewind)
        for key, value in (("lr", lr), ("temperature", temperature), ("min_steps", min_steps)):
            check_positive(value, f"method.{key}")
        for key, value in (("max_steps", max_steps), ("momentum", momentum),
                           ("weight_decay", weight_decay), ("alpha", alpha), ("gamma", gamma)):
            if value is None or value < 0:
                raise ConfigError(f"method.{key}", f"must be >= 0, got {value}")
        for key, value in (("batch_size", batch_size), ("forget_batch_size", forget_batch_size),
                           ("max_grad_norm", max_grad_norm)):
            if value is not None and value <= 0:
                raise ConfigError(f"method.{key}", f"must be positive or null, got {value}")
        self.max_steps, self.min_steps = int(max_steps), int(min_steps)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.alpha, self.gamma, self.temperature = alpha, gamma, temperature
        self.batch_size, self.forget_batch_size = batch_size, forget_batch_size
        self.max_grad_norm = max_grad_norm

    def lr_at(self, epoch: int) -> float:
        """The lr of 1-based ``epoch``: ×rate for every decay epoch it exceeds (official rule)."""
        return self.lr * self.lr_decay_rate ** sum(epoch > e for e in self.lr_decay_epochs)

    def unlearn(self, model: nn.Module, data, ctx) -> Unlearned:
        ctx = method_recipe(ctx, self.recipe_overrides)
        teacher = copy.deepcopy(model).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        forget = split_batches(data.forget, ctx, self.forget_batch_size, stream="forget_batches")
        retain = split_batches(data.retain, ctx, self.batch_size, stream="retain_batches")
        T = self.temperature
        phase = {"now": "min"}

        def make_batches(epoch: int):
            # Tag each batch with its phase: one loop, one optimizer, max- then min-epoch.
            max_phase = (("max", b) for b in forget(epoch)) if epoch < self.max_steps else ()
            min_phase = (("min", b) for b in retain(epoch)) if epoch < self.min_steps else ()
            return itertools.chain(max_phase, min_phase)

        def loss_fn(student, tagged):
            phase["now"], (x, y) = tagged
            with torch.no_grad():
                teacher_logits = teacher(x)
            logits = student(x)
            kl = distill_kl(logits, teacher_logits, T)
            if phase["now"] == "max":
                return -kl
            return self.alpha * kl + self.gamma * F.cross_entropy(logits, y)

        recipe = replace(ctx.recipe, optimizer="sgd", momentum=self.momentum,
                         weight_decay=self.weight_decay)
        opt = make_optimizer(model.parameters(), recipe, self.lr)
        if self.max_grad_norm is not None:
            def clip_max_steps(*_):  # runs between backward and the update
                if phase["now"] == "max":
                    nn.utils.clip_grad_norm_(model.parameters(), self.max_grad_norm)

            opt.register_step_pre_hook(clip_max_steps)
        epochs = max(self.max_steps, self.min_steps)
        rewind = Rewind(model, data) if self.rewind else None

        def after_epoch(epoch: int) -> None:  # 0-based epoch just finished
            for group in opt.param_groups:
                group["lr"] = self.lr_at(epoch + 2)
            if rewind is not None:
                rewind.keep(model, ctx)

        for group in opt.param_groups:
            group["lr"] = self.lr_at(1)
        if rewind is not None:
            rewind.keep(model, ctx)
        with self.localization.restrict(model, data, ctx) as hooks:
            train_loop(model, make_batches, loss_fn, opt, epochs, ctx, "scrub", after_step=hooks,
                       after_epoch=after_epoch)
        stats = self.localization.stats()
        details = {"lrs": [self.lr_at(e) for e in range(1, epochs + 1)]}
        if rewind is not None:
            chosen = rewind.choose(model, ctx)
            stats["rewind_epoch"] = chosen
            details["forget_errors"], details["target_error"] = rewind.errors, rewind.target
        return Unlearned(model, stats, details)


class Rewind:
    """SCRUB+R: the epoch whose forget error is closest to a validation reference."""

    def __init__(self, model: nn.Module, data):
        self.forget = data.forget
        classes = torch.unique(data.forget.y)
        on = torch.isin(data.val.y, classes.to(data.val.y.device))
        # Validation examples "like the forget set": those of its classes (all of D_v for a
        # random forget set, the forgotten classes' examples for a class-wise one).
        self.val = data.val.x[on], data.val.y[on]
        if len(self.val[1]) == 0:
            raise ConfigError("method.rewind", "needs validation examples of the forget set's "
                                               "classes (dataset.val_fraction > 0)")
        self.states, self.errors, self.target = [], [], None

    def keep(self, model: nn.Module, ctx) -> None:
        self.states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        self.errors.append(error(model, self.forget.x, self.forget.y, ctx))

    def choose(self, model: nn.Module, ctx) -> int:
        """Loads the chosen epoch's weights into ``model``; returns that epoch (0 = start)."""
        self.target = error(model, *self.val, ctx)
        chosen = min(range(len(self.errors)), key=lambda i: abs(self.errors[i] - self.target))
        model.load_state_dict(self.states[chosen])
        return chosen


def error(model: nn.Module, x: Tensor, y: Tensor, ctx) -> float:
    """Top-1 error of ``model`` on (x, y), no gradient."""
    return float((predict(model, x, ctx).argmax(1) != y).float().mean())
