"""``random_label``: D_f relabelled uniformly at random (never its true class), trained with D_r."""

from typing import Optional

from unlearnbench.data.bundle import Split
from unlearnbench.methods.base import Method
from unlearnbench.methods.common import (ce, check_positive, concat, random_wrong_labels,
                                         run_epochs, split_batches, steps_for)
from unlearnbench.registry import METHODS


@METHODS.register("random_label")
class RandomLabel(Method):
    version = "1"

    def __init__(self, epochs: int = 2, lr: float = 0.01, batch_size: Optional[int] = None):
        check_positive(epochs, "method.epochs")
        check_positive(lr, "method.lr")
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size

    def unlearn(self, model, data, ctx):
        wrong = random_wrong_labels(data.forget.y, data.num_classes, ctx.generator(14))
        mixed = concat(data.retain, Split(data.forget.x, wrong))
        return run_epochs(model, split_batches(mixed, ctx, self.batch_size, stream=15), ce, ctx,
                          "random_label", self.epochs, self.lr, steps_for(mixed, ctx, self.batch_size))
