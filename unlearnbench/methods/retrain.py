"""``retrain``: the oracle θ_r, trained from scratch on D_r with the same recipe."""

from unlearnbench.methods.base import Method
from unlearnbench.registry import METHODS


@METHODS.register("retrain")
class Retrain(Method):
    """The pipeline starts it from the (cached) oracle, which it returns unchanged; its
    unlearning time is the oracle's training time."""

    version = "1"
    uses_oracle = True

    def unlearn(self, model, data, ctx):
        return model
