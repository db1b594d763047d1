"""Unlearning cost: wall seconds and speed-up over retraining from scratch."""

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS


@EVALUATORS.register("efficiency")
class Efficiency(Evaluator):
    metrics = {
        "rte_s": Metric(False, "wall seconds of the unlearning stage (retrain: the oracle's training time)"),
        "speedup_vs_retrain": Metric(True, "oracle training seconds / unlearning seconds, same run"),
    }

    def evaluate(self, model, ctx):
        seconds = ctx.timings.get(model.role)
        if seconds is None:  # the original model was not produced by unlearning
            return {}
        return {"rte_s": seconds,
                "speedup_vs_retrain": ctx.timings["retrain"] / max(seconds, 1e-9)}
