"""``eu_k``: exact unlearning of the last k layers (Goel et al., "Towards Adversarial Evaluation
of Machine Unlearning", 2022). [code]

Official code: github.com/shash42/Evaluating-Inexact-Unlearning, ``src/methods.py``
``retrain_lastK`` / ``resetFinalResnet`` (reinit=True), commit
a45fe023216f407e947b0c87c3ea2c8229f1d5e5. The last k Conv2d/Linear layers (and the BatchNorm
layers after them; see ``last_layers``) are re-initialised (Kaiming normal, zero bias) and
trained from there on D_r with the training recipe; every other parameter stays frozen at θ_o.
Officially the retraining runs as many epochs as the original training (``epochs: null``).
"""

from typing import Optional

from unlearnbench.engine import fit
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import check_positive
from unlearnbench.methods.last_layers import last_layers, reinitialise, train_only, trainable_fraction
from unlearnbench.registry import METHODS


class LastLayers(Method):
    """Shared keys of ``eu_k`` and ``cf_k``: which layers, and how long / fast to train them."""

    reinit = False

    def __init__(self, k: int = 2, epochs: Optional[int] = None, lr: Optional[float] = None):
        check_positive(k, "method.k")
        for key, value in (("epochs", epochs), ("lr", lr)):
            if value is not None:
                check_positive(value, f"method.{key}")
        self.k, self.epochs, self.lr = int(k), epochs, lr

    def unlearn(self, model, data, ctx):
        modules = last_layers(model, self.k)
        if self.reinit:
            reinitialise(modules, ctx.generator("last_layers_init"))
        with train_only(model, modules) as params:
            fit(model, data.retain, ctx.recipe, ctx, self.registry_name, epochs=self.epochs, lr=self.lr,
                stream="retain_batches", params=params)
        return Unlearned(model, {"trainable_fraction": trainable_fraction(model, modules)})


@METHODS.register("eu_k")
class ExactUnlearningLastK(LastLayers):
    version = "1"
    reinit = True
