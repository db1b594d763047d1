"""Tug of war (ToW): the product of how close each accuracy is to the oracle's.

Convention (RUM, Zhao et al. NeurIPS 2024, official code): accuracies in percent,
ToW = (1 − |RA_u − RA_r|/100)(1 − |FA_u − FA_r|/100)(1 − |TA_u − TA_r|/100). Accuracies
here are fractions, so the /100 disappears. 1 = every accuracy equals the oracle's; the
oracle's own row is exactly 1 and the original's row shows what no unlearning scores.
"""

from __future__ import annotations

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS


def tug_of_war(*gaps: float) -> float:
    """∏ (1 − gap) over absolute gaps given as fractions."""
    out = 1.0
    for gap in gaps:
        out *= 1.0 - abs(gap)
    return out


def _acc_gap(model, ctx, split: str) -> float:
    return model.accuracy(split) - ctx.oracle.accuracy(split)


@EVALUATORS.register("tow")
class TugOfWar(Evaluator):
    reusable_reference = True
    metrics = {
        "tow": Metric(True, "RUM tug of war: (1−|RA−RA_r|)(1−|FA−FA_r|)(1−|TA−TA_r|), accuracies "
                            "as fractions; 1 = oracle"),
    }

    def evaluate(self, model, ctx):
        return {"tow": tug_of_war(*(_acc_gap(model, ctx, s) for s in ("retain", "forget", "test")))}


@EVALUATORS.register("tow_mia")
class TugOfWarMia(Evaluator):
    """ToW with the forget-accuracy factor replaced by the SalUn MIA-Efficacy gap."""

    requires = ("mia_svc",)
    reusable_reference = True
    metrics = {
        "tow_mia": Metric(True, "(1−|RA−RA_r|)(1−|MIA−MIA_r|)(1−|TA−TA_r|) with MIA = "
                                "mia_svc_efficacy (fraction); 1 = oracle"),
    }

    def evaluate(self, model, ctx):
        mia_gap = ctx.results[model.role]["mia_svc_efficacy"] - ctx.results["retrain"]["mia_svc_efficacy"]
        return {"tow_mia": tug_of_war(_acc_gap(model, ctx, "retain"), mia_gap,
                                      _acc_gap(model, ctx, "test"))}
