"""``sfron``: SFR-on, saliency forgetting in the remain-preserving manifold online
(Huang et al., NeurIPS 2024, "Unified Gradient-Based Machine Unlearning with Remain Geometry
Enhancement"). [code]

Official code: github.com/K1nght/Unified-Unlearning-w-Remain-Geometry,
``Classification/unlearn/sfron.py`` (class ``SFRon``, its CIFAR-10 10 % settings), commit
36bb7f6f897a2db751877f00071042c44709a89c.

* Mask: diagonal Fisher of D_f and of D_r (mean over batches of the squared gradient of the
  batch-mean CE, model in eval mode); an element may move in forget steps iff
  (F_f + 1e-15) / (F_r + 1e-15) ≥ ``threshold``.
* ``iters`` iterations with one SGD optimizer (momentum, weight decay, lr cosine-annealed
  to 0 over ``iters``). Every ``forget_every``-th iteration first takes a forget step:
  ascend the *adaptive* cross-entropy on a D_f batch, weights w_i ∝ 1 / CE_i^λ normalised
  to sum to the batch size (easily-forgotten examples count less), scaled by
  α_t = ``forget_alpha``·(1 + cos(π t / iters)) / 2; gradients masked, then clipped to
  norm ``max_grad_norm``. Every iteration takes a retain step: plain CE on a D_r batch,
  unmasked and unclipped.

The official EMA of the weights is the identity at its setting (β = 1) and is left out.
"""

from __future__ import annotations

import math
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import capped, check_nonnegative, check_positive, cycle, split_batches
from unlearnbench.methods.ssd import diagonal_fisher
from unlearnbench.registry import METHODS


def adaptive_ce(logits: Tensor, y: Tensor, lam: float) -> Tensor:
    """Σ_i w_i·CE_i / B with w_i = B·c_i / Σ c, c_i = 1 / (CE_i^λ + 1e-15) (official AdaptiveLoss)."""
    losses = F.cross_entropy(logits.float(), y, reduction="none")
    coef = 1.0 / (losses.detach().pow(lam) + 1e-15)
    return ((coef / coef.sum()) * losses * losses.shape[0]).mean()


def saliency_ratio_mask(fisher_forget: List[Tensor], fisher_retain: List[Tensor],
                        threshold: float) -> List[Tensor]:
    """Elements whose forget importance is at least ``threshold`` × their retain importance."""
    return [(f + 1e-15) / (r + 1e-15) >= threshold for f, r in zip(fisher_forget, fisher_retain)]


def cosine_weight(base: float, step: int, total: int) -> float:
    return base * (1 + math.cos(math.pi * step / total)) / 2


@METHODS.register("sfron")
class SFRon(Method):
    version = "1"

    def __init__(self, iters: int = 1500, forget_every: int = 5, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, forget_alpha: float = 25.0, adaptive_lambda: float = 0.5,
                 max_grad_norm: float = 7.0, threshold: float = 1.0, batch_size: int = 128):
        for key, value in (("iters", iters), ("forget_every", forget_every), ("lr", lr),
                           ("max_grad_norm", max_grad_norm), ("batch_size", batch_size)):
            check_positive(value, f"method.{key}")
        for key, value in (("momentum", momentum), ("weight_decay", weight_decay), ("forget_alpha", forget_alpha),
                           ("adaptive_lambda", adaptive_lambda), ("threshold", threshold)):
            check_nonnegative(value, f"method.{key}")
        self.iters, self.forget_every, self.lr = iters, forget_every, lr
        self.momentum, self.weight_decay = momentum, weight_decay
        self.forget_alpha, self.adaptive_lambda = forget_alpha, adaptive_lambda
        self.max_grad_norm, self.threshold, self.batch_size = max_grad_norm, threshold, batch_size

    def mask(self, model: nn.Module, data, ctx) -> List[Tensor]:
        with ctx.timer("precompute"):
            f_forget = diagonal_fisher(model, data.forget, ctx, self.batch_size, stream="fisher_forget_batches")
            f_retain = diagonal_fisher(model, data.retain, ctx, self.batch_size, stream="fisher_retain_batches")
        return saliency_ratio_mask(f_forget, f_retain, self.threshold)

    def unlearn(self, model, data, ctx):
        params = [p for p in model.parameters() if p.requires_grad]
        mask = self.mask(model, data, ctx)
        opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.iters)
        forget = cycle(split_batches(data.forget, ctx, self.batch_size, stream="forget_batches"))
        retain = cycle(split_batches(data.retain, ctx, self.batch_size, stream="retain_batches"))
        iters = capped(self.iters, ctx)
        model.train()
        for step in ctx.progress(range(iters), desc="sfron"):
            if step % self.forget_every == 0:
                alpha = cosine_weight(self.forget_alpha, step, self.iters)
                self.forget_step(model, params, mask, opt, next(forget), alpha, ctx)
            self.retain_step(model, opt, next(retain), ctx)
            sched.step()
        model.eval()
        stats: Dict[str, float] = {"mask_fraction": float(sum(m.sum() for m in mask) / sum(m.numel() for m in mask)),
                                   "forget_steps": float(math.ceil(iters / self.forget_every))}
        return Unlearned(model, stats)

    def forget_step(self, model, params, mask, opt, batch, alpha: float, ctx) -> None:
        x, y = batch
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            loss = -alpha * adaptive_ce(model(x), y, self.adaptive_lambda)
        loss.backward()
        for p, m in zip(params, mask):
            if p.grad is not None:
                p.grad.mul_(m.to(p.grad.dtype))
        nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        opt.step()

    def retain_step(self, model, opt, batch, ctx) -> None:
        x, y = batch
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
