"""``gradient_ascent``: maximise the cross-entropy on D_f (NegGrad)."""

from typing import Optional

from unlearnbench.methods.base import Method
from unlearnbench.methods.common import ce, check_positive, run_epochs, split_batches, steps_for
from unlearnbench.methods.localize import Localization
from unlearnbench.registry import METHODS


@METHODS.register("gradient_ascent")
class GradientAscent(Method):
    version = "1"

    def __init__(self, epochs: int = 1, lr: float = 0.001, batch_size: Optional[int] = None,
                 localize: str = "none", localize_budget: float = 0.3):
        check_positive(epochs, "method.epochs")
        check_positive(lr, "method.lr")
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.localization = Localization(localize, localize_budget)

    def unlearn(self, model, data, ctx):
        with self.localization.restrict(model, data, ctx) as hooks:
            return run_epochs(model, split_batches(data.forget, ctx, self.batch_size, stream=12),
                              lambda m, b: -ce(m, b), ctx, "gradient_ascent", self.epochs, self.lr,
                              steps_for(data.forget, ctx, self.batch_size), schedule="constant",
                              after_step=hooks)
