"""Loss-threshold membership inference as ROC-AUC: ``mia_loss_auc``."""

import numpy as np

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS


def loss_auc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float:
    """P(a member has lower loss than a non-member), ties counted half: ROC-AUC of −loss.

    A NaN loss (a diverged model's output) counts as +inf: the model fits that example not at
    all. Infinite losses tie with each other, so a model whose outputs are all NaN scores 0.5.
    An empty side (no member or no non-member) leaves the AUC undefined: NaN, which the run
    writes and warns about.
    """
    from sklearn.metrics import roc_auc_score

    if len(member_losses) == 0 or len(nonmember_losses) == 0:
        return float("nan")

    losses = np.nan_to_num(np.r_[member_losses, nonmember_losses].astype(np.float64), nan=np.inf)
    top = np.finfo(np.float64).max  # sklearn rejects inf; the largest float keeps order and ties
    losses = np.clip(losses, -top, top)
    labels = np.r_[np.ones(len(member_losses)), np.zeros(len(nonmember_losses))]
    return float(roc_auc_score(labels, -losses))


@EVALUATORS.register("mia_loss")
class MiaLoss(Evaluator):
    reusable_reference = True
    metrics = {
        "mia_loss_auc": Metric(None, "ROC-AUC of −loss separating D_f (members) from D_t; "
                                     "0.5 = indistinguishable, closer to the oracle is better"),
    }

    def evaluate(self, model, ctx):
        return {"mia_loss_auc": loss_auc(model.losses("forget").cpu().numpy(),
                                         model.losses("test").cpu().numpy())}
