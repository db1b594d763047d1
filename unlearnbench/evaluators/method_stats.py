"""What a method reports about its own run (``ctx.extras`` / ``ctx.timings``), as metrics.

Methods with a data-dependent amount of work (early stopping) record it in the run
context; this surfaces it in metrics.csv for the unlearned role only. Precomputation
seconds are the ``efficiency`` evaluator's ``precompute_s``.
"""

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS

# metric name -> (where in the run context, key)
_SOURCES = {
    "unlearn_epochs": ("extras", "method_epochs"),
    "unlearn_steps": ("extras", "method_steps"),
}


@EVALUATORS.register("method_stats")
class MethodStats(Evaluator):
    metrics = {
        "unlearn_epochs": Metric(False, "passes over D_r the method ran "
                                        "(fractional; early-stopping methods)"),
        "unlearn_steps": Metric(False, "optimizer steps the method ran (early-stopping methods)"),
    }

    def evaluate(self, model, ctx):
        if model.role != "unlearned":  # the stats describe the method's run, not the references
            return {}
        out = {}
        for metric, (where, key) in _SOURCES.items():
            value = getattr(ctx.run, where).get(key)
            if value is not None:
                out[metric] = float(value)
        return out
