"""``original``: θ_o unchanged — the no-forgetting bound."""

from unlearnbench.methods.base import Method
from unlearnbench.registry import METHODS


@METHODS.register("original")
class Original(Method):
    version = "1"

    def unlearn(self, model, data, ctx):
        return model
