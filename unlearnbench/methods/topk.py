"""``topk``: perturb the most important parameters for D_f, then repair (Zuo et al., Top-K).

[abstract] only a small subset of parameters is perturbed; [reconstructed] which subset:
the ``fraction`` with the largest memory-aware-synapses importance Ω on D_f.
"""

from typing import Optional

from unlearnbench.errors import ConfigError
from unlearnbench.methods.common import check_positive
from unlearnbench.methods.perturb import IMPORTANCES, SubsetPerturbation, top_fraction
from unlearnbench.methods.perturb import importance as mas_importance
from unlearnbench.registry import METHODS


@METHODS.register("topk")
class TopK(SubsetPerturbation):
    version = "2-reconstructed"  # 2: named random streams

    def __init__(self, importance: str = "logit_norm", importance_batch_size: int = 128,
                 fraction: float = 0.01, scope: str = "global", sigma: float = 0.1,
                 relative: bool = False, include_norm: bool = False, repair_epochs: int = 1,
                 repair_only_selected: bool = False, repair_lr: Optional[float] = None,
                 repair_batch_size: Optional[int] = None, localize: str = "none",
                 localize_budget: float = 0.3):
        if importance not in IMPORTANCES:
            raise ConfigError("method.importance", f"'{importance}' is not one of {'|'.join(IMPORTANCES)}")
        check_positive(importance_batch_size, "method.importance_batch_size")
        super().__init__(fraction, scope, sigma, relative, include_norm, repair_epochs,
                         repair_only_selected, repair_lr, repair_batch_size, localize, localize_budget)
        self.importance, self.importance_batch_size = importance, importance_batch_size

    def select(self, model, params, data, ctx):
        scores = mas_importance(model, params, data.forget, ctx, self.importance, self.importance_batch_size)
        return top_fraction(scores, self.fraction, self.scope)
