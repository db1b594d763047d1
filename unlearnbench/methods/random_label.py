"""``random_label``: D_f relabelled uniformly at random (never its true class), trained with D_r."""

from typing import Optional

from unlearnbench.data.bundle import Split
from unlearnbench.methods.common import ce, concat, random_wrong_labels, split_batches, steps_for
from unlearnbench.methods.gradient import GradientMethod
from unlearnbench.methods.localize import ParamMask
from unlearnbench.registry import METHODS


@METHODS.register("random_label")
class RandomLabel(GradientMethod):
    version = "2"  # 2: named random streams

    def unlearn(self, model, data, ctx):
        return self.relabel_and_train(model, data, ctx)

    def relabel_and_train(self, model, data, ctx, base: Optional[ParamMask] = None):
        """Trains on D_r ∪ relabelled D_f; ``base`` restricts updates (SalUn's saliency mask)."""
        wrong = random_wrong_labels(data.forget.y, data.num_classes, ctx.generator("random_labels"))
        mixed = concat(data.retain, Split(data.forget.x, wrong))
        return self.train(model, data, ctx, split_batches(mixed, ctx, self.batch_size, stream="mixed_batches"), ce,
                          steps_for(mixed, ctx, self.batch_size), base=base)
