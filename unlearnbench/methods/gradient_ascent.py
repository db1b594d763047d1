"""``gradient_ascent``: maximise the cross-entropy on D_f (NegGrad); constant lr (YAML ``schedule``)."""

from unlearnbench.methods.common import ce, split_batches, steps_for
from unlearnbench.methods.gradient import GradientMethod
from unlearnbench.registry import METHODS


@METHODS.register("gradient_ascent")
class GradientAscent(GradientMethod):
    version = "2"  # 2: named random streams

    def unlearn_steps(self, model, data, ctx):
        return self.train(model, data, ctx, split_batches(data.forget, ctx, self.batch_size, stream="forget_batches"),
                          lambda m, b: -ce(m, b), steps_for(data.forget, ctx, self.batch_size))
