"""Loss-threshold membership inference as ROC-AUC: ``mia_loss_auc``."""

import numpy as np

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS


def loss_auc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float:
    """P(a member has lower loss than a non-member), ties counted half: ROC-AUC of −loss.

    NaN when a loss is not finite (a diverged model): such losses cannot be ranked.
    """
    from sklearn.metrics import roc_auc_score

    if not (np.isfinite(member_losses).all() and np.isfinite(nonmember_losses).all()):
        return float("nan")

    labels = np.r_[np.ones(len(member_losses)), np.zeros(len(nonmember_losses))]
    return float(roc_auc_score(labels, -np.r_[member_losses, nonmember_losses]))


@EVALUATORS.register("mia_loss")
class MiaLoss(Evaluator):
    metrics = {
        "mia_loss_auc": Metric(None, "ROC-AUC of −loss separating D_f (members) from D_t; "
                                     "0.5 = indistinguishable, closer to the oracle is better"),
    }

    def evaluate(self, model, ctx):
        return {"mia_loss_auc": loss_auc(model.losses("forget").cpu().numpy(),
                                         model.losses("test").cpu().numpy())}
