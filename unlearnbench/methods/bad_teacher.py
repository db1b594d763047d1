"""``bad_teacher``: unlearning with an incompetent teacher (Chundawat et al., AAAI 2023). [code]

Official code: github.com/vikram2000b/bad-teaching-unlearning, ``unlearn.py``
(``UnlearnerLoss``, ``blindspot_unlearner``) and the notebook
``CIFARSuper20_Rocket_Unlearn.ipynb`` for the settings, commit
f1aa988f71cccf1be6d50e0c6f7b2b905e4c9126.

The student (the model being unlearned, a copy of θ_o) is distilled on D_f ∪ (a random
``retain_fraction`` of D_r) towards two frozen teachers: on D_f towards the *incompetent*
teacher (a freshly initialised model of the same architecture), on D_r towards the
competent one (θ_o). The loss is KL(teacher ‖ student) on softmax(·/T) with
``F.kl_div``'s default ``reduction="mean"`` (an average over batch × classes, as in the
official code). Official settings: Adam (no weight decay), lr 1e-4, 1 epoch, batch 256,
T = 1, 30 % of the retain set.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.errors import ConfigError
from unlearnbench.methods.common import check_positive, concat, random_subset, split_batches, steps_for
from unlearnbench.methods.gradient import GradientMethod
from unlearnbench.methods.localize import fresh_init
from unlearnbench.registry import METHODS


def frozen(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def bad_teacher_loss(student_logits: Tensor, is_forget: Tensor, competent_logits: Tensor,
                     incompetent_logits: Tensor, temperature: float) -> Tensor:
    """KL(teacher ‖ student) per element, averaged over batch × classes (official ``UnlearnerLoss``).

    The teacher is the incompetent one where ``is_forget`` is 1, the competent one elsewhere.
    """
    flag = is_forget.float().unsqueeze(1)
    teacher = (flag * F.softmax(incompetent_logits.float() / temperature, dim=1)
               + (1 - flag) * F.softmax(competent_logits.float() / temperature, dim=1))
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    # = F.kl_div(..., reduction="mean") of the official code, without its deprecation warning
    return F.kl_div(log_student, teacher, reduction="sum") / teacher.numel()


@METHODS.register("bad_teacher")
class BadTeacher(GradientMethod):
    version = "1"

    def __init__(self, retain_fraction: float = 0.3, temperature: float = 1.0, **keys):
        super().__init__(**keys)
        if not 0.0 < retain_fraction <= 1.0:
            raise ConfigError("method.retain_fraction", f"must be in (0, 1], got {retain_fraction}")
        check_positive(temperature, "method.temperature")
        self.retain_fraction, self.temperature = retain_fraction, temperature

    def unlearn_steps(self, model, data, ctx):
        competent = frozen(copy.deepcopy(model))
        incompetent = frozen(fresh_init(model, ctx, "incompetent_teacher", data.new_model))
        retain = random_subset(data.retain, self.retain_fraction, ctx.generator("retain_subset"))
        # The label column carries the forget flag (1 = D_f), as the official UnLearningData does.
        flags = concat(Split(data.forget.x, torch.ones_like(data.forget.y)),
                       Split(retain.x, torch.zeros_like(retain.y)))

        def loss(student, batch):
            x, is_forget = batch
            with torch.no_grad():
                competent_logits, incompetent_logits = competent(x), incompetent(x)
            return bad_teacher_loss(student(x), is_forget, competent_logits, incompetent_logits,
                                    self.temperature)

        out = self.train(model, data, ctx, split_batches(flags, ctx, self.batch_size, stream="unlearning_batches"),
                         loss, steps_for(flags, ctx, self.batch_size))
        out.stats["retain_used"] = len(retain)
        return out
