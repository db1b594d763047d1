"""Absolute gaps to the retrained oracle (SalUn-style), per accuracy and on average."""

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS

GAP_SPLITS = ("forget", "retain", "test")


@EVALUATORS.register("oracle_gap")
class OracleGap(Evaluator):
    metrics = {
        **{f"{s}_acc_gap": Metric(False, f"|{s}_acc(θ) − {s}_acc(θ_r)| (fraction); 0 = oracle")
           for s in GAP_SPLITS},
        "acc_avg_gap": Metric(False, "mean of forget/retain/test accuracy gaps to the oracle; 0 = oracle"),
    }

    def evaluate(self, model, ctx):
        gaps = {f"{s}_acc_gap": abs(model.accuracy(s) - ctx.oracle.accuracy(s)) for s in GAP_SPLITS}
        gaps["acc_avg_gap"] = sum(gaps.values()) / len(gaps)
        return gaps
