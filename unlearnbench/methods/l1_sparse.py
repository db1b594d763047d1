"""``l1_sparse``: finetune on D_r with a decaying ℓ1 penalty (Jia et al., NeurIPS 2023).

Loss CE(D_r) + α_t‖θ‖₁ over all parameters with α_t = alpha·(1 − t/T): sparsity early,
plain finetuning at the end. ``decay: step`` counts t and T in optimizer steps;
``decay: epoch`` in epochs, α constant within an epoch (DEL's code, unlearn.py:164-166, and
SalUn's/Sparse's FT_prune). With ``alpha: 0`` it is ``finetune`` exactly (same data stream).
"""

import torch

from unlearnbench.errors import ConfigError
from unlearnbench.methods.common import ce, split_batches, steps_for
from unlearnbench.methods.gradient import GradientMethod
from unlearnbench.methods.localize import check_choice
from unlearnbench.registry import METHODS


def l1_weight(alpha: float, step: int, total: int) -> float:
    """α_t = alpha · (1 − t/T), linear from alpha at the first step towards 0."""
    return alpha * (1.0 - step / max(1, total))


@METHODS.register("l1_sparse")
class L1Sparse(GradientMethod):
    version = "2"  # 2: named random streams

    def __init__(self, alpha: float = 7e-5, decay: str = "step", **keys):
        super().__init__(**keys)
        if alpha is None or alpha < 0:
            raise ConfigError("method.alpha", f"must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.decay = check_choice(decay, ("step", "epoch"), "method.decay")

    def unlearn_steps(self, model, data, ctx):
        steps = steps_for(data.retain, ctx, self.batch_size)
        total, step = steps * self.epochs, [0]
        params = list(model.parameters())

        def loss(m, batch):
            if self.decay == "epoch":
                a = l1_weight(self.alpha, step[0] // steps, self.epochs)
            else:
                a = l1_weight(self.alpha, step[0], total)
            step[0] += 1
            if a == 0.0:
                return ce(m, batch)
            return ce(m, batch) + a * torch.stack([p.abs().sum() for p in params]).sum()

        return self.train(model, data, ctx, split_batches(data.retain, ctx, self.batch_size, stream="retain_batches"),
                          loss, steps)
