"""An unlearnbench plugin outside the package: one of each component kind.

Run from this folder:
    unlearnbench plugins=[myplugins] hydra.searchpath=[file://myconf] \
        method=shrink model=tiny_mlp dataset=blobs forget=first_n eval=mine
"""

import numpy as np
import torch
from torch import nn

from unlearnbench.data.bundle import RawData
from unlearnbench.data.forget.base import ForgetSet, ForgetSpec
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators.base import Evaluator, Metric
from unlearnbench.methods import Method, Unlearned
from unlearnbench.registry import DATASETS, EVALUATORS, FORGET_SPECS, METHODS, MODELS


@METHODS.register("shrink")
class Shrink(Method):
    """Scales every weight by ``factor``: a toy method, to show the contract."""

    version = "1"

    def __init__(self, factor: float = 0.9):
        if not 0 < factor <= 1:
            raise ConfigError("method.factor", f"must be in (0, 1], got {factor}")
        self.factor = factor

    def unlearn(self, model, data, ctx):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(self.factor)
        return Unlearned(model, stats={"factor": self.factor})


@MODELS.register("tiny_mlp")
def tiny_mlp(input_shape, num_classes: int, hidden: int = 32) -> nn.Module:
    """The classifier must be called ``fc`` (localization keeps it trainable)."""
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), hidden), nn.ReLU()))
    model.add_module("fc", nn.Linear(hidden, num_classes))
    return model


@DATASETS.register("blobs")
def blobs(data_root: str, n: int = 600, classes: int = 3, seed: int = 0) -> RawData:
    """Gaussian blobs as 1x4x4 'images'; no test split, so 20 % is held out."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, 1, 4, 4)).astype(np.float32) + y[:, None, None, None]
    return RawData(x, y.astype(np.int64), None, None, num_classes=classes)


@FORGET_SPECS.register("first_n")
class FirstN(ForgetSpec):
    """The first ``count`` training examples."""

    def __init__(self, count: int = 20, seed=None):
        super().__init__(seed)
        self.count = count

    def select(self, data, run_seed):
        return ForgetSet.from_forget(np.arange(self.count), len(data.train), "forget.count")


@EVALUATORS.register("mean_margin")
class MeanMargin(Evaluator):
    metrics = {"forget_mean_margin": Metric(None, "mean true-class logit minus the best other logit on D_f")}

    def evaluate(self, model, ctx):
        z, y = model.logits("forget"), model.splits["forget"].y
        true = z.gather(1, y.view(-1, 1)).squeeze(1)
        other = z.scatter(1, y.view(-1, 1), float("-inf")).amax(1)
        return {"forget_mean_margin": float((true - other).mean())}
