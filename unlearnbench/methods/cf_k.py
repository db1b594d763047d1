"""``cf_k``: catastrophic forgetting of the last k layers (Goel et al., 2022). [code]

Official code: github.com/shash42/Evaluating-Inexact-Unlearning, ``src/methods.py``
``cat_forget_finetune`` / ``resetFinalResnet`` (reinit=False), commit
a45fe023216f407e947b0c87c3ea2c8229f1d5e5. Like ``eu_k`` without the re-initialisation: the
last k layers keep θ_o's values and are finetuned on D_r with the training recipe; the rest
is frozen. (Goel et al. finetune for about half the original epochs, 30 of 62; here
``epochs: null`` = the recipe's.)
"""

from unlearnbench.methods.eu_k import LastLayers
from unlearnbench.registry import METHODS


@METHODS.register("cf_k")
class CatastrophicForgettingLastK(LastLayers):
    version = "1"
    reinit = False
