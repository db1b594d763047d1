"""``random_label``: D_f relabelled uniformly at random (never its true class), trained with D_r."""

from typing import Optional

from unlearnbench.data.bundle import Split
from unlearnbench.methods.base import Method
from unlearnbench.methods.common import (ce, check_positive, concat, random_wrong_labels,
                                         run_epochs, split_batches, steps_for)
from unlearnbench.methods.localize import Localization, ParamMask
from unlearnbench.registry import METHODS


@METHODS.register("random_label")
class RandomLabel(Method):
    version = "1"

    def __init__(self, epochs: int = 2, lr: float = 0.01, batch_size: Optional[int] = None,
                 localize: str = "none", localize_budget: float = 0.3):
        check_positive(epochs, "method.epochs")
        check_positive(lr, "method.lr")
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.localization = Localization(localize, localize_budget)

    def unlearn(self, model, data, ctx):
        return self.relabel_and_train(model, data, ctx)

    def relabel_and_train(self, model, data, ctx, base: Optional[ParamMask] = None,
                          desc: str = "random_label"):
        """Trains on D_r ∪ relabelled D_f; ``base`` restricts updates (SalUn's saliency mask)."""
        wrong = random_wrong_labels(data.forget.y, data.num_classes, ctx.generator(14))
        mixed = concat(data.retain, Split(data.forget.x, wrong))
        with self.localization.restrict(model, data, ctx, base=base) as hooks:
            return run_epochs(model, split_batches(mixed, ctx, self.batch_size, stream=15), ce, ctx,
                              desc, self.epochs, self.lr, steps_for(mixed, ctx, self.batch_size),
                              after_step=hooks)
