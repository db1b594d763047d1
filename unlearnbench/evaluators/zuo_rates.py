"""Zuo et al.'s forgetting / retention rates and their per-example counterparts [reconstructed].

Zuo et al. (arXiv 2401.04385) report a forgetting rate and a memory retention rate; the
paper body was not available, so the definitions are our reading:
FR = (FA_o − FA_u) / FA_o and MRR = RA_u / RA_o, relative to the original model θ_o.
Two per-example rates make the same comparison without letting examples that flip in
opposite directions cancel: ``forget_flip_rate`` = of the D_f examples θ_o classifies
correctly, the share θ_u gets wrong; ``retain_keep_rate`` = of the D_r examples θ_o
classifies correctly, the share θ_u still gets right. (FR = forget_flip_rate minus the
share of θ_o's D_f mistakes, relative to its correct count, that θ_u fixes.)
The original scores FR = 0, MRR = 1, flip = 0, keep = 1 by construction; the oracle's
row is the reference a method should match (with i.i.d. forget sets the oracle still
classifies most of D_f correctly, so FR near 1 is *not* the goal there).
"""

from __future__ import annotations

import torch

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def conditional_rate(reference: torch.Tensor, event: torch.Tensor) -> float:
    """Share of the examples where ``reference`` holds for which ``event`` holds (NaN if none)."""
    reference = reference.bool()
    return _ratio(float((reference & event.bool()).sum()), float(reference.sum()))


@EVALUATORS.register("zuo_rates")
class ZuoRates(Evaluator):
    reusable_reference = True
    metrics = {
        "forgetting_rate": Metric(None, "Zuo et al. [reconstructed] (FA_o − FA)/FA_o vs the original; "
                                        "original 0, closer to the oracle is better"),
        "memory_retention_rate": Metric(True, "Zuo et al. [reconstructed] RA/RA_o vs the original; original 1"),
        "forget_flip_rate": Metric(None, "of D_f examples θ_o classifies correctly, the share this "
                                         "model gets wrong; closer to the oracle is better"),
        "retain_keep_rate": Metric(True, "of D_r examples θ_o classifies correctly, the share this "
                                         "model still gets right"),
    }

    def evaluate(self, model, ctx):
        ref = ctx.original
        fa_o, ra_o = ref.accuracy("forget"), ref.accuracy("retain")
        return {
            "forgetting_rate": _ratio(fa_o - model.accuracy("forget"), fa_o),
            "memory_retention_rate": _ratio(model.accuracy("retain"), ra_o),
            "forget_flip_rate": conditional_rate(ref.correct("forget"), ~model.correct("forget")),
            "retain_keep_rate": conditional_rate(ref.correct("retain"), model.correct("retain")),
        }
