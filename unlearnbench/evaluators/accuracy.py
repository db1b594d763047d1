"""Accuracy and mean cross-entropy on each split."""

from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.registry import EVALUATORS

SPLITS = ("forget", "retain", "val", "test")


@EVALUATORS.register("accuracy")
class Accuracy(Evaluator):
    reusable_reference = True
    metrics = {
        "forget_acc": Metric(None, "share of D_f classified correctly (fraction); closer to the oracle is better"),
        "retain_acc": Metric(True, "share of D_r classified correctly (fraction)"),
        "val_acc": Metric(True, "share of the validation split classified correctly (fraction)"),
        "test_acc": Metric(True, "share of D_t classified correctly (fraction)"),
    }

    def evaluate(self, model, ctx):
        return {f"{s}_acc": model.accuracy(s) for s in SPLITS}


@EVALUATORS.register("loss")
class Loss(Evaluator):
    reusable_reference = True
    metrics = {
        "forget_loss": Metric(None, "mean cross-entropy on D_f (nats); closer to the oracle is better"),
        "retain_loss": Metric(False, "mean cross-entropy on D_r (nats)"),
        "val_loss": Metric(False, "mean cross-entropy on the validation split (nats)"),
        "test_loss": Metric(False, "mean cross-entropy on D_t (nats)"),
    }

    def evaluate(self, model, ctx):
        return {f"{s}_loss": float(model.losses(s).mean()) for s in SPLITS}
