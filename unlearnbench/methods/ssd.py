"""``ssd``: Selective Synaptic Dampening (Foster, Schoepf, Brintrup, arXiv 2308.07707).

[paper] Retraining-free: compare each parameter's importance to the forget set with its
importance to the whole training set and shrink the ones that matter disproportionately
to D_f. Importance is the diagonal Fisher information, estimated as the mean over batches
of the squared gradient of the batch-mean cross-entropy (batch-level, as is usual for SSD;
no per-example gradients). For every parameter with I_f > α·I_D:

    θ ← β·θ,  β = min(λ·I_D / I_f, 1)

Everything else is left bit-identical. D = D_f ∪ D_r (the training data). Defaults λ = 1,
α = 10 (the paper's ResNet-18 setting, also used by ∇τ's comparison).
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor, nn

from unlearnbench.engine import batches
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import ce, check_positive, concat
from unlearnbench.registry import METHODS


def diagonal_fisher(model: nn.Module, split, ctx, batch_size: int, stream: str) -> List[Tensor]:
    """Mean over batches of (∂ CE_batch / ∂θ)², one tensor per trainable parameter.

    The model is scored in eval mode (BatchNorm statistics fixed, no buffer updates);
    the recipe's ``max_batches`` (debug=smoke) caps the batches like every other loop.
    Squares are accumulated on the device; the host never waits inside the loop.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    was_training = model.training
    model.eval()
    n = 0
    for batch in batches(split, batch_size, ctx.generator(stream), max_batches=ctx.recipe.max_batches):
        with ctx.autocast():
            loss = ce(model, batch)
        grads = torch.autograd.grad(loss, params)
        torch._foreach_add_(total, [g.float().square() for g in grads])
        n += 1
    model.train(was_training)
    return [t / max(n, 1) for t in total]


@torch.no_grad()
def dampen(params: List[Tensor], fisher_forget: List[Tensor], fisher_all: List[Tensor],
           alpha: float, lam: float) -> int:
    """θ ← min(λ·I_D/I_f, 1)·θ where I_f > α·I_D; returns how many entries were dampened."""
    count = 0
    for p, i_f, i_d in zip(params, fisher_forget, fisher_all):
        selected = i_f > alpha * i_d
        beta = torch.where(selected, (lam * i_d / i_f.clamp_min(torch.finfo(i_f.dtype).tiny)).clamp(max=1.0),
                           torch.ones_like(i_f))
        p.mul_(beta.to(p.dtype))
        count += int(selected.sum())
    return count


@METHODS.register("ssd")
class SelectiveSynapticDampening(Method):
    version = "2"  # 2: named random streams

    def __init__(self, lam: float = 1.0, alpha: float = 10.0, batch_size: Optional[int] = None):
        check_positive(lam, "method.lam")
        check_positive(alpha, "method.alpha")
        if batch_size is not None:
            check_positive(batch_size, "method.batch_size")
        self.lam, self.alpha, self.batch_size = lam, alpha, batch_size

    def unlearn(self, model, data, ctx):
        bs = self.batch_size or ctx.recipe.batch_size
        with ctx.timer("precompute"):
            fisher_forget = diagonal_fisher(model, data.forget, ctx, bs, stream="fisher_forget_batches")
            fisher_all = diagonal_fisher(model, concat(data.forget, data.retain), ctx, bs, stream="fisher_train_batches")
        params = [p for p in model.parameters() if p.requires_grad]
        dampened = dampen(params, fisher_forget, fisher_all, self.alpha, self.lam)
        total = sum(p.numel() for p in params)
        return Unlearned(model, {"dampened": dampened, "dampened_fraction": dampened / max(total, 1)})
