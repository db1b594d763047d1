"""``negrad_plus``: minimise β·CE(D_r) − (1−β)·CE(D_f) on paired batches (β = 0.99 as in DEL)."""

from typing import Optional

from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method
from unlearnbench.methods.common import ce, check_positive, paired_batches, run_epochs, steps_for
from unlearnbench.methods.localize import Localization
from unlearnbench.registry import METHODS


@METHODS.register("negrad_plus")
class NegGradPlus(Method):
    version = "1"

    def __init__(self, epochs: int = 3, lr: float = 0.01, beta: float = 0.99,
                 batch_size: Optional[int] = None, localize: str = "none",
                 localize_budget: float = 0.3):
        check_positive(epochs, "method.epochs")
        check_positive(lr, "method.lr")
        if not 0.0 <= beta <= 1.0:
            raise ConfigError("method.beta", f"must be in [0, 1], got {beta}")
        self.epochs, self.lr, self.beta, self.batch_size = epochs, lr, beta, batch_size
        self.localization = Localization(localize, localize_budget)

    def unlearn(self, model, data, ctx):
        def loss(m, pair):
            retain_batch, forget_batch = pair
            return self.beta * ce(m, retain_batch) - (1 - self.beta) * ce(m, forget_batch)

        with self.localization.restrict(model, data, ctx) as hooks:
            return run_epochs(model, paired_batches(data.retain, data.forget, ctx, self.batch_size, 13),
                              loss, ctx, "negrad_plus", self.epochs, self.lr,
                              steps_for(data.retain, ctx, self.batch_size), after_step=hooks)
