"""``salun``: SalUn (Fan et al., ICLR 2024) — random labels on D_f, only salient weights move.

Weight saliency is |Σ_b ∇θ CE(D_f)|; the top ``mask_fraction`` of all elements (global,
element-wise, classifier included) may change, the rest stay bit-identical. Training is
``random_label``'s (same keys ``mode``/``labels``, same data streams), so
``mask_fraction: 1.0`` reproduces ``random_label`` exactly. The official loop is
``mode: relabel, labels: any`` (conf/recipe/salun/salun.yaml).
"""

from unlearnbench.methods.localize import check_fraction, saliency_mask
from unlearnbench.methods.random_label import RandomLabel
from unlearnbench.registry import METHODS


@METHODS.register("salun")
class SalUn(RandomLabel):
    version = "2"  # 2: named random streams

    def __init__(self, mask_fraction: float = 0.5, **keys):
        super().__init__(**keys)
        self.mask_fraction = check_fraction(mask_fraction, "method.mask_fraction")

    def unlearn_steps(self, model, data, ctx):
        with ctx.timer("precompute"):
            saliency = saliency_mask(model, data.forget, ctx, self.mask_fraction)
        out = self.relabel_and_train(model, data, ctx, base=saliency)
        out.stats["mask_fraction"] = saliency.fraction
        return out
