"""``scrub``: SCRUB, teacher-student max-min unlearning (Kurmanji et al., NeurIPS 2023).

Written from the paper (its code's licence forbids reuse; it was not consulted). [paper]
The original model is a frozen teacher; the student (the model being unlearned) starts as
a copy of it and alternates two kinds of epochs with one SGD optimizer:

* max-epoch on D_f: maximise d(x) = KL(p_teacher(x) ‖ p_student(x)), i.e. disobey the
  teacher on the data to forget;
* min-epoch on D_r: minimise α·KL(p_teacher ‖ p_student) + γ·CE(student, y), i.e. stay with
  the teacher (and the labels) on the data to keep.

Max-epochs run only in the first ``max_steps`` epochs; the remaining min-epochs repair the
utility the max-steps cost. The max objective is unbounded: on Fashion-MNIST (10 % random or
class_fraction) the logits overflowed to inf within the first max-epochs, so max-step
gradients are clipped to ``max_grad_norm`` (null disables) [reconstructed, not in the paper]. Probabilities are softened with temperature T and the KL is
scaled by T² (Hinton et al.'s distillation convention, so gradients keep their size across
T) [reconstructed: the paper writes the KL without temperature details].
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.engine import make_optimizer, train_loop
from unlearnbench.methods.localize import Localization
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import check_positive, split_batches
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
                 forget_batch_size: Optional[int] = 32, max_grad_norm: Optional[float] = 1.0,
                 localize: str = "none", localize_budget: float = 0.3):
        self.localization = Localization(localize, localize_budget)
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

    def unlearn(self, model: nn.Module, data, ctx) -> nn.Module:
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
        with self.localization.restrict(model, data, ctx) as hooks:
            train_loop(model, make_batches, loss_fn, opt, max(self.max_steps, self.min_steps),
                       ctx, "scrub", after_step=hooks)
        return Unlearned(model, self.localization.stats())
