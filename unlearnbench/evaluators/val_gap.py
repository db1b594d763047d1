"""The tuning objective: a gap to the oracle that reads D_f, D_r and the validation split only.

Hyperparameter search scores every trial with it, so the test split never influences which
parameters are chosen; the test accuracy of a tuned method stays an honest held-out number.
"""

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.evaluators.mia_loss import loss_auc
from unlearnbench.registry import EVALUATORS

ACC_SPLITS = ("forget", "retain", "val")


def mia_loss_val_auc(model) -> float:
    """ROC-AUC of −loss separating D_f (members) from the validation split (non-members)."""
    return loss_auc(model.losses("forget").cpu().numpy(), model.losses("val").cpu().numpy())


@EVALUATORS.register("val_gap")
class ValGap(Evaluator):
    reusable_reference = True
    metrics = {
        "mia_loss_val_auc": Metric(None, "ROC-AUC of −loss separating D_f (members) from the validation "
                                         "split; closer to the oracle is better"),
        "val_avg_gap": Metric(False, "mean of |ΔFA|, |ΔRA|, |ΔVA| and |Δmia_loss_val_auc| to the oracle "
                                     "(fraction); never reads D_t; 0 = oracle; the default tuning objective"),
    }

    def evaluate(self, model, ctx):
        mia = mia_loss_val_auc(model)
        gaps = [abs(model.accuracy(s) - ctx.oracle.accuracy(s)) for s in ACC_SPLITS]
        gaps.append(abs(mia - mia_loss_val_auc(ctx.oracle)))
        return {"mia_loss_val_auc": mia, "val_avg_gap": sum(gaps) / len(gaps)}
