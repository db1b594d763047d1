"""``randomk``: perturb a uniformly random subset of parameters, then repair (Zuo et al., Random-k).

The control for ``topk``: same budget, perturbation and repair, no importance scores.
"""

from unlearnbench.methods.perturb import SubsetPerturbation, random_fraction
from unlearnbench.registry import METHODS


@METHODS.register("randomk")
class RandomK(SubsetPerturbation):
    version = "2-reconstructed"  # 2: named random streams

    def select(self, model, params, data, ctx):
        return random_fraction(params, self.fraction, self.scope, ctx.generator("random_selection"))
