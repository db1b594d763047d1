"""Logistic-regression MIA accuracy on the forget set vs the test set (∇τ / NeurIPS'23 kit).

Convention (NeurIPS 2023 Machine Unlearning Challenge starting kit, ``simple_mia``, reused
by ∇τ): one scalar per example (cross-entropy loss, or ∇τ's predictive entropy); D_f is
labelled 1 and D_t 0; the larger group is subsampled (seeded) to the size of the smaller;
a LogisticRegression is scored by ``cross_val_score`` over StratifiedShuffleSplit(10)
with the kit's test_size (sklearn's default, 0.1). The metric is the mean held-out accuracy.
0.5 = the attacker cannot tell D_f from unseen data; the original model scores higher.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from unlearnbench.engine.context import stream_seed
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS

log = logging.getLogger("unlearnbench")



def lr_mia_accuracy(member: np.ndarray, nonmember: np.ndarray, seed: int, n_splits: int = 10,
                    test_size: float = 0.1) -> float:
    """Mean held-out accuracy of a logistic-regression attack on one feature.

    Members are labelled 1, non-members 0; the larger group is subsampled (seeded) to the
    size of the smaller so that 0.5 is chance. NaN when a split could not hold one example
    of each group.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    rng = np.random.default_rng(seed)
    n = min(len(member), len(nonmember))
    n_test = math.ceil(2 * n * test_size)  # StratifiedShuffleSplit's rounding
    if n_test < 2 or 2 * n - n_test < 2:
        return float("nan")
    member = member if len(member) == n else rng.choice(member, n, replace=False)
    nonmember = nonmember if len(nonmember) == n else rng.choice(nonmember, n, replace=False)
    x = np.r_[member, nonmember].reshape(-1, 1).astype(np.float64)
    y = np.r_[np.ones(n), np.zeros(n)]
    cv = StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    return float(cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean())


@EVALUATORS.register("mia_lr")
class MiaLr(Evaluator):
    """Loss- and entropy-based logistic-regression MIA accuracy, D_f (1) vs D_t (0).

    Args:
        n_splits: stratified shuffle splits averaged (kit: 10).
        test_size: held-out share of each split (kit: sklearn's default 0.1).
    """

    reusable_reference = True
    metrics = {
        "mia_loss_lr_acc": Metric(None, "NeurIPS'23-kit MIA: mean CV accuracy of logistic regression "
                                        "on per-example loss, D_f (1) vs D_t (0), balanced; ideal 0.5"),
        "mia_entropy_lr_acc": Metric(None, "∇τ MIA: the same attack on predictive entropy; ideal 0.5"),
    }

    def __init__(self, n_splits: int = 10, test_size: float = 0.1):
        if int(n_splits) < 1:
            raise ConfigError("eval.params.mia_lr.n_splits", f"must be >= 1, got {n_splits}")
        if not 0.0 < float(test_size) < 1.0:
            raise ConfigError("eval.params.mia_lr.test_size", f"must be in (0, 1), got {test_size}")
        self.n_splits, self.test_size = int(n_splits), float(test_size)

    def evaluate(self, model, ctx):
        seed = stream_seed(ctx.run.seed, "mia_lr_splits") % 2**32  # numpy/sklearn take 32 bits
        out = {}
        for name, feature in (("mia_loss_lr_acc", model.losses), ("mia_entropy_lr_acc", model.entropy)):
            out[name] = lr_mia_accuracy(feature("forget").cpu().numpy(), feature("test").cpu().numpy(),
                                        seed, self.n_splits, self.test_size)
        if any(np.isnan(v) for v in out.values()):
            log.warning("mia_lr: forget/test sets too small for %d-way splits; metric is NaN", self.n_splits)
        return out
