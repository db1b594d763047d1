"""Output-distribution divergences: ``js_to_oracle`` and Chundawat et al.'s ZRF score.

Both compare softmax outputs example by example with the Jensen-Shannon divergence in nats
(natural log, as the official codes below use): JS(p, q) = ½KL(p ‖ m) + ½KL(q ‖ m),
m = (p + q)/2, which lies in [0, ln 2].

* ``js_to_oracle_<split>`` = mean over the split of JS(p_θ(x), p_θr(x)): how far the model's
  predictions are from the retrained oracle's (SFR-on, Huang et al. NeurIPS 2024, official
  ``Classification/evaluation/js_div.py``, commit 36bb7f6; they report it on D_f).
* ``zrf`` = 1 − mean over D_f of JS(p_θ(x), p_T(x)), T a randomly initialised model of the
  same architecture (the "incompetent teacher"): the Zero Retrain Forgetting score of
  Chundawat et al. (AAAI 2023). The paper's formula; the official ``metrics.py``
  (vikram2000b/bad-teaching-unlearning, commit f1aa988) computes ``F.kl_div(log p, m)``,
  i.e. KL(m ‖ p), with a mean over batch × classes, which is not JS and shrinks with the
  class count — its numbers are not comparable with these. T is an independent seeded
  initialisation (stream ``zrf_incompetent_teacher``), not the teacher ``bad_teacher``
  distils towards, so the score does not favour that method.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor

from unlearnbench.evaluators.base import EvalContext, Evaluator, Metric, Scored
from unlearnbench.methods.localize import fresh_init
from unlearnbench.registry import EVALUATORS

JS_SPLITS = ("forget", "test")


def js_divergence(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """Per-row Jensen-Shannon divergence (nats) between softmax(logits_p) and softmax(logits_q)."""
    p, q = logits_p.float().softmax(1), logits_q.float().softmax(1)
    m = (p + q) / 2
    kl_pm = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(1)
    kl_qm = (torch.xlogy(q, q) - torch.xlogy(q, m)).sum(1)
    return (0.5 * (kl_pm + kl_qm)).clamp_min(0)


def zero_retrain_forgetting(logits: Tensor, teacher_logits: Tensor) -> float:
    """ZRF = 1 − mean JS(model, incompetent teacher) over the rows (D_f)."""
    return 1.0 - float(js_divergence(logits, teacher_logits).mean())


@EVALUATORS.register("js_to_oracle")
class JsToOracle(Evaluator):
    reusable_reference = True
    metrics = {f"js_to_oracle_{s}": Metric(False, f"mean per-example Jensen-Shannon divergence (nats, ≤ ln 2) "
                                                  f"between this model's and the oracle's softmax on D_{s[0]}; "
                                                  "0 = oracle")
               for s in JS_SPLITS}

    def evaluate(self, model, ctx):
        return {f"js_to_oracle_{s}": float(js_divergence(model.logits(s), ctx.oracle.logits(s)).mean())
                for s in JS_SPLITS}


@EVALUATORS.register("zrf")
class ZeroRetrainForgetting(Evaluator):
    reusable_reference = True
    metrics = {"zrf": Metric(None, "Chundawat et al.'s ZRF: 1 − mean JS (nats) between this model's and a "
                                   "randomly initialised model's softmax on D_f, in [1 − ln 2, 1]; closer to "
                                   "the oracle is better")}

    def __init__(self):
        self._teacher: Dict[int, Tensor] = {}  # id(EvalContext) -> the teacher's D_f logits

    def teacher_logits(self, ctx: EvalContext) -> Tensor:
        key = id(ctx)
        if key not in self._teacher:
            self._teacher = {}  # one run at a time: never hold an earlier run's outputs
            original = ctx.original
            teacher = fresh_init(original.model, ctx.run, "zrf_incompetent_teacher")
            self._teacher[key] = Scored("incompetent", teacher, original.splits, ctx.run).logits("forget")
        return self._teacher[key]

    def evaluate(self, model, ctx):
        return {"zrf": zero_retrain_forgetting(model.logits("forget"), self.teacher_logits(ctx))}
