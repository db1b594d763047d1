"""``del``: Deletion by Example Localization — localize, reset, finetune on D_r.

Torkzadehmahani et al., TMLR 2025 (arXiv 2412.02432), following the official code: the
parameters that matter most for D_f (|θ⊙G| at channel granularity) are reset to a fresh
initialisation and only they, plus the classifier, are finetuned on the retain set.
"""

import logging
from dataclasses import replace

from unlearnbench.engine import make_optimizer, make_scheduler, train_loop
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import ce, check_positive, split_batches, steps_for
from unlearnbench.methods.localize import (CHANNEL_TOPK, CRITERIA, check_choice, check_fraction,
                                           del_mask, fresh_init, reset_masked)
from unlearnbench.models import classifier_of
from unlearnbench.registry import METHODS

log = logging.getLogger("unlearnbench")



@METHODS.register("del")
class DEL(Method):
    """Mask (steps 1–3), reset (step 4) and masked finetuning (step 5) of METHODS.md.

    Finetuning uses DEL's own optimizer, not the recipe's: SGD momentum 0.9, weight decay
    0, cosine to 0.01·lr, fixed epochs. Gradients of masked-out elements are zeroed and
    their values restored after each step (bit-identical); the classifier is fully
    trainable when ``classifier_trainable``; BatchNorm statistics update freely.
    """

    version = "2"  # 2: named random streams

    def __init__(self, criterion: str = "weighted_grad", channel_topk: str = "out_fraction",
                 budget: float = 0.3, lr: float = 0.03, epochs: int = 2, batch_size: int = 128,
                 classifier_trainable: bool = True):
        self.criterion = check_choice(criterion, CRITERIA, "method.criterion")
        self.channel_topk = check_choice(channel_topk, CHANNEL_TOPK, "method.channel_topk")
        self.budget = check_fraction(budget, "method.budget")
        check_positive(lr, "method.lr")
        check_positive(epochs, "method.epochs")
        check_positive(batch_size, "method.batch_size")
        self.lr, self.epochs, self.batch_size = lr, int(epochs), int(batch_size)
        self.classifier_trainable = bool(classifier_trainable)

    def unlearn(self, model, data, ctx):
        with ctx.timer("precompute"):
            mask = del_mask(model, data.forget, data.retain, ctx, self.budget, self.criterion,
                            self.channel_topk)
        on = sum(int(m.sum()) for m in mask.allowed.values())
        total = sum(m.numel() for m in mask.allowed.values())
        log.info("DEL mask: %d of %d parameter elements (%.6f; budget %s), %.2fs",
                 on, total, on / total, self.budget,
                 ctx.timings["precompute_s"])
        reset_masked(model, fresh_init(model, ctx, "fresh_init", data.new_model), mask)
        stats = {"mask_fraction": mask.fraction}
        if self.classifier_trainable:
            mask = mask.with_trainable(model, classifier_of(model))

        recipe = replace(ctx.recipe, optimizer="sgd", momentum=0.9, weight_decay=0.0,
                         schedule="cosine", final_lr_fraction=0.01, warmup_epochs=0.0)
        opt = make_optimizer(model.parameters(), recipe, self.lr)
        sched = make_scheduler(opt, recipe, max(1, steps_for(data.retain, ctx, self.batch_size) * self.epochs))
        with mask.restrict(model) as hooks:
            train_loop(model, split_batches(data.retain, ctx, self.batch_size, "retain_batches"),
                       ce, opt, self.epochs, ctx, "del", sched, after_step=hooks)
        return Unlearned(model, stats)
