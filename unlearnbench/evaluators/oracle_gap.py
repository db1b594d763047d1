"""Absolute gaps to the retrained oracle (SalUn-style), per accuracy and on average."""

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS

GAP_SPLITS = ("forget", "retain", "test")


@EVALUATORS.register("oracle_gap")
class OracleGap(Evaluator):
    reusable_reference = True
    metrics = {
        **{f"{s}_acc_gap": Metric(False, f"|{s}_acc(θ) − {s}_acc(θ_r)| (fraction); 0 = oracle")
           for s in GAP_SPLITS},
        "acc_avg_gap": Metric(False, "mean of forget/retain/test accuracy gaps to the oracle; 0 = oracle"),
    }

    def evaluate(self, model, ctx):
        gaps = {f"{s}_acc_gap": abs(model.accuracy(s) - ctx.oracle.accuracy(s)) for s in GAP_SPLITS}
        gaps["acc_avg_gap"] = sum(gaps.values()) / len(gaps)
        return gaps


@EVALUATORS.register("avg_gap")
class AvgGap(Evaluator):
    """SalUn's Avg.Gap: the accuracy gaps and the MIA-Efficacy gap, averaged.

    SalUn averages |ΔUA|, |ΔRA|, |ΔTA| and |ΔMIA-Efficacy| with UA = 1 − FA, so its
    unlearning-accuracy gap equals the forget-accuracy gap used here.
    """

    requires = ("mia_svc",)
    reusable_reference = True
    metrics = {
        "mia_svc_efficacy_gap": Metric(False, "|mia_svc_efficacy(θ) − mia_svc_efficacy(θ_r)| (fraction); 0 = oracle"),
        "avg_gap": Metric(False, "SalUn Avg.Gap: mean of the forget/retain/test accuracy gaps and the "
                                 "mia_svc_efficacy gap to the oracle (fraction); 0 = oracle"),
    }

    def evaluate(self, model, ctx):
        gaps = [abs(model.accuracy(s) - ctx.oracle.accuracy(s)) for s in GAP_SPLITS]
        mia_gap = abs(ctx.results[model.role]["mia_svc_efficacy"] - ctx.results["retrain"]["mia_svc_efficacy"])
        return {"mia_svc_efficacy_gap": mia_gap, "avg_gap": (sum(gaps) + mia_gap) / (len(gaps) + 1)}
