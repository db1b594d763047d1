"""``negrad_plus``: minimise β·CE(D_r) − (1−β)·CE(D_f) on paired batches (β = 0.99 as in DEL)."""

from unlearnbench.errors import ConfigError
from unlearnbench.methods.common import ce, paired_batches, steps_for
from unlearnbench.methods.gradient import GradientMethod
from unlearnbench.registry import METHODS


@METHODS.register("negrad_plus")
class NegGradPlus(GradientMethod):
    version = "2"  # 2: named random streams

    def __init__(self, beta: float = 0.99, **keys):
        super().__init__(**keys)
        if not 0.0 <= beta <= 1.0:
            raise ConfigError("method.beta", f"must be in [0, 1], got {beta}")
        self.beta = beta

    def unlearn_steps(self, model, data, ctx):
        def loss(m, pair):
            retain_batch, forget_batch = pair
            return self.beta * ce(m, retain_batch) - (1 - self.beta) * ce(m, forget_batch)

        return self.train(model, data, ctx,
                          paired_batches(data.retain, data.forget, ctx, self.batch_size, "retain_forget_batches"),
                          loss, steps_for(data.retain, ctx, self.batch_size))
