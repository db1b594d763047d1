"""``finetune``: continue training on D_r only; forgetting comes from catastrophic drift."""

from unlearnbench.methods.common import ce, split_batches, steps_for
from unlearnbench.methods.gradient import GradientMethod
from unlearnbench.registry import METHODS


@METHODS.register("finetune")
class Finetune(GradientMethod):
    version = "2"  # 2: named random streams

    def unlearn_steps(self, model, data, ctx):
        return self.train(model, data, ctx, split_batches(data.retain, ctx, self.batch_size, stream="retain_batches"),
                          ce, steps_for(data.retain, ctx, self.batch_size))
