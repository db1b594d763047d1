"""``GradientMethod``: the base of methods that take gradient steps for some epochs at some lr.

They share the keys ``epochs``, ``lr``, ``batch_size``, ``localize`` and
``localize_budget`` (YAML: ``conf/method/_gradient.yaml``), the checks on them and the
localized training loop; a subclass writes its batches and its loss.
"""

from __future__ import annotations

from typing import Optional

from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import check_positive, run_epochs
from unlearnbench.methods.localize import Localization, ParamMask


class GradientMethod(Method):
    """Keys every gradient-based method takes; per-method defaults live in its YAML."""

    def __init__(self, epochs: int = 1, lr: float = 0.01, batch_size: Optional[int] = None,
                 localize: str = "none", localize_budget: float = 0.3):
        check_positive(epochs, "method.epochs")
        check_positive(lr, "method.lr")
        if batch_size is not None:
            check_positive(batch_size, "method.batch_size")
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.localization = Localization(localize, localize_budget)

    def train(self, model, data, ctx, make_batches, loss, steps: int, desc: Optional[str] = None,
              base: Optional[ParamMask] = None, **loop) -> Unlearned:
        """``self.epochs`` epochs of ``loss`` at ``self.lr``, localized; returns the model and
        the share of parameters that could move (when restricted)."""
        with self.localization.restrict(model, data, ctx, base=base) as hooks:
            run_epochs(model, make_batches, loss, ctx, desc or self.registry_name, self.epochs,
                       self.lr, steps, after_step=hooks, **loop)
        return Unlearned(model, self.localization.stats())
