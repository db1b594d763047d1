"""``l1_sparse``: finetune on D_r with a decaying ℓ1 penalty (Jia et al., NeurIPS 2023).

Loss CE(D_r) + α_t‖θ‖₁ over all parameters with α_t = alpha·(1 − t/T), t the step and T
the number of steps: sparsity early, plain finetuning at the end. With ``alpha: 0`` it is
``finetune`` exactly (same data stream).
"""

from typing import Optional

import torch

from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method
from unlearnbench.methods.common import ce, check_positive, run_epochs, split_batches, steps_for
from unlearnbench.methods.localize import Localization
from unlearnbench.registry import METHODS


def l1_weight(alpha: float, step: int, total: int) -> float:
    """α_t = alpha · (1 − t/T), linear from alpha at the first step towards 0."""
    return alpha * (1.0 - step / max(1, total))


@METHODS.register("l1_sparse")
class L1Sparse(Method):
    version = "1"

    def __init__(self, epochs: int = 3, lr: float = 0.01, alpha: float = 7e-5,
                 batch_size: Optional[int] = None, localize: str = "none",
                 localize_budget: float = 0.3):
        check_positive(epochs, "method.epochs")
        check_positive(lr, "method.lr")
        if alpha is None or alpha < 0:
            raise ConfigError("method.alpha", f"must be >= 0, got {alpha}")
        self.epochs, self.lr, self.alpha, self.batch_size = epochs, lr, float(alpha), batch_size
        self.localization = Localization(localize, localize_budget)

    def unlearn(self, model, data, ctx):
        steps = steps_for(data.retain, ctx, self.batch_size)
        total, step = steps * self.epochs, [0]
        params = list(model.parameters())

        def loss(m, batch):
            a = l1_weight(self.alpha, step[0], total)
            step[0] += 1
            if a == 0.0:
                return ce(m, batch)
            return ce(m, batch) + a * torch.stack([p.abs().sum() for p in params]).sum()

        with self.localization.restrict(model, data, ctx) as hooks:
            return run_epochs(model, split_batches(data.retain, ctx, self.batch_size, stream=11), loss,
                              ctx, "l1_sparse", self.epochs, self.lr, steps, after_step=hooks)
