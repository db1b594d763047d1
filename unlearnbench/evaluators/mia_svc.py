"""SalUn's "MIA-Efficacy": a confidence-based SVC attack applied to the forget set.

Convention (SalUn / ℓ1-sparse official code, ``evaluation.SVC_MIA`` with
``target_train=None``): a shadow attack, an RBF SVC(C=3, gamma="auto"), learns to tell
members from non-members by the softmax probability of the true label, with |D_t| retain
examples as members (label 1) and D_t as non-members (label 0). It is then applied to D_f;
the metric is the fraction of D_f predicted *non-member*. Higher = the forget set looks
more unseen; the oracle's value (not 1) is the target, so ``higher_is_better`` is None.
The shadow SVC is fitted per model, as in SalUn: each model's own confidences define
what "member" looks like for it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from unlearnbench.errors import ConfigError
from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS


def svc_efficacy(member_conf: np.ndarray, nonmember_conf: np.ndarray, target_conf: np.ndarray,
                 C: float = 3.0) -> float:
    """Fraction of ``target_conf`` an RBF SVC, fitted on members (1) vs non-members (0),
    predicts as non-member."""
    from sklearn.svm import SVC

    x = np.r_[member_conf, nonmember_conf].reshape(-1, 1)
    y = np.r_[np.ones(len(member_conf)), np.zeros(len(nonmember_conf))]
    clf = SVC(C=C, kernel="rbf", gamma="auto").fit(x, y)
    return float(np.mean(clf.predict(np.asarray(target_conf).reshape(-1, 1)) == 0))


def _sample(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """``k`` of ``range(n)`` without replacement, seeded (all of them when k >= n)."""
    return torch.arange(n) if k >= n else torch.randperm(n, generator=gen)[:k]


@EVALUATORS.register("mia_svc")
class MiaSvc(Evaluator):
    """SalUn's SVC MIA-Efficacy on D_f.

    Args:
        max_examples: cap on each shadow group (members and non-members). None = SalUn's
            sizes (|D_t| of each, or |D_r| of each if D_r is smaller: the groups are kept
            balanced); the SVC fit grows roughly quadratically, ≈15–25 s for
            20k points on a 2-core CPU, so sweeps may cap it (e.g. 5000 ≈ 8 s). D_f itself is
            always scored whole. Groups are drawn by seeded sampling, identically for every
            role of a run.
        C: the SVC's regularisation (SalUn: 3).
    """

    reusable_reference = True
    metrics = {
        "mia_svc_efficacy": Metric(None, "SalUn MIA-Efficacy: share of D_f an RBF SVC(C=3) on "
                                         "true-label confidence (|D_t| retain members vs D_t) "
                                         "predicts non-member (fraction); closer to the oracle"),
    }

    def __init__(self, max_examples: Optional[int] = None, C: float = 3.0):
        if max_examples is not None and int(max_examples) < 2:
            raise ConfigError("eval.params.mia_svc.max_examples", f"must be >= 2 or null, got {max_examples}")
        if C <= 0:
            raise ConfigError("eval.params.mia_svc.C", f"must be positive, got {C}")
        self.max_examples = None if max_examples is None else int(max_examples)
        self.C = float(C)

    def evaluate(self, model, ctx):
        n_test, n_retain = len(model.splits["test"]), len(model.splits["retain"])
        if len(model.splits["forget"]) == 0 or n_test == 0 or n_retain == 0:
            return {"mia_svc_efficacy": float("nan")}
        # SalUn's groups are |D_t| and |D_t|: keep them balanced when D_r is smaller or capped,
        # else the SVC learns the majority label and predicts it for all of D_f.
        k = min(n_test, n_retain, self.max_examples or n_test)
        gen = ctx.run.generator("mia_svc_shadow_sample")
        members = _sample(n_retain, k, gen)
        nonmembers = _sample(n_test, k, gen)
        conf = {s: model.true_confidence(s).cpu() for s in ("forget", "retain", "test")}
        return {"mia_svc_efficacy": svc_efficacy(conf["retain"][members].numpy(),
                                                 conf["test"][nonmembers].numpy(),
                                                 conf["forget"].numpy(), self.C)}
