"""``retrain``: the oracle θ_r, trained from scratch on D_r with the same recipe."""

import copy

from unlearnbench.methods.base import Method
from unlearnbench.registry import METHODS


@METHODS.register("retrain")
class Retrain(Method):
    """Returns the (cached) oracle; its unlearning time is the oracle's training time."""

    version = "1"
    uses_oracle = True

    def unlearn(self, model, data, ctx):
        return copy.deepcopy(ctx.oracle)
