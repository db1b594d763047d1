"""Unlearning cost: wall seconds, speed-up over retraining, and the precomputation share."""

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS


@EVALUATORS.register("efficiency")
class Efficiency(Evaluator):
    """``precompute_s`` is what a method spent before its updates (masks, importance scores,
    Fisher diagonals, generators). Methods record it with ``with ctx.timer("precompute"):``
    inside ``unlearn``, so it is *part of* ``rte_s``, reported apart so that amortisable
    costs are visible. Methods that precompute nothing report 0.
    """

    metrics = {
        "rte_s": Metric(False, "wall seconds of the unlearning stage (retrain: the oracle's training time)"),
        "speedup_vs_retrain": Metric(True, "oracle training seconds / unlearning seconds, same run"),
        "precompute_s": Metric(False, "wall seconds of the method's precomputation (masks, importance, "
                                      "Fisher, GAN), included in rte_s; 0 if none"),
    }

    def evaluate(self, model, ctx):
        seconds = ctx.timings.get(model.role)
        if seconds is None:  # the original model was not produced by unlearning
            return {}
        precompute = ctx.run.timings.get("precompute_s", 0.0) if model.role == "unlearned" else 0.0
        out = {"rte_s": seconds}
        if ctx.timings.get("retrain") is not None:  # None: the oracle came from oracle_path
            out["speedup_vs_retrain"] = ctx.timings["retrain"] / max(seconds, 1e-9)
        out["precompute_s"] = float(precompute)
        return out
