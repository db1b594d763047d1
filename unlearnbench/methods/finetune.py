"""``finetune``: continue training on D_r only; forgetting comes from catastrophic drift."""

from typing import Optional

from unlearnbench.methods.base import Method
from unlearnbench.methods.common import ce, check_positive, run_epochs, split_batches, steps_for
from unlearnbench.methods.localize import Localization
from unlearnbench.registry import METHODS


@METHODS.register("finetune")
class Finetune(Method):
    version = "1"

    def __init__(self, epochs: int = 3, lr: float = 0.01, batch_size: Optional[int] = None,
                 localize: str = "none", localize_budget: float = 0.3):
        check_positive(epochs, "method.epochs")
        check_positive(lr, "method.lr")
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.localization = Localization(localize, localize_budget)

    def unlearn(self, model, data, ctx):
        with self.localization.restrict(model, data, ctx) as hooks:
            return run_epochs(model, split_batches(data.retain, ctx, self.batch_size, stream=11), ce,
                              ctx, "finetune", self.epochs, self.lr,
                              steps_for(data.retain, ctx, self.batch_size), after_step=hooks)
