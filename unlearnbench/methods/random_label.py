"""``random_label``: D_f relabelled uniformly at random, trained together with D_r.

Two loops, both from official code:

* ``mode: mixed`` (default): D_f with one fixed draw of random labels is shuffled into D_r
  and trained as one set (DEL's ``relabeling``, unlearn.py:378-394; ∇τ's Amnesiac).
* ``mode: relabel``: each epoch is a full pass over D_f with fresh random labels per batch,
  then a full pass over D_r (SalUn's ``RL`` for CIFAR-10/SVHN, unlearn/RL.py:123-159).

``labels: wrong`` never draws the true class (∇τ's Amnesiac redraws it); ``labels: any``
draws from all classes, the true one included (DEL's and SalUn's ``randint``).
"""

import itertools
from typing import Optional

from unlearnbench.data.bundle import Split
from unlearnbench.methods.common import (ce, concat, random_any_labels, random_wrong_labels, split_batches,
                                         steps_for)
from unlearnbench.methods.gradient import GradientMethod
from unlearnbench.methods.localize import ParamMask, check_choice
from unlearnbench.registry import METHODS

MODES = ("mixed", "relabel")
LABELS = {"wrong": random_wrong_labels, "any": random_any_labels}


@METHODS.register("random_label")
class RandomLabel(GradientMethod):
    version = "2"  # 2: named random streams

    def __init__(self, mode: str = "mixed", labels: str = "wrong", **keys):
        super().__init__(**keys)
        self.mode = check_choice(mode, MODES, "method.mode")
        self.draw = LABELS[check_choice(labels, tuple(LABELS), "method.labels")]

    def unlearn_steps(self, model, data, ctx):
        return self.relabel_and_train(model, data, ctx)

    def relabel_and_train(self, model, data, ctx, base: Optional[ParamMask] = None):
        """Trains on D_r and relabelled D_f; ``base`` restricts updates (SalUn's saliency mask)."""
        gen = ctx.generator("random_labels")
        if self.mode == "mixed":
            mixed = concat(data.retain, Split(data.forget.x, self.draw(data.forget.y, data.num_classes, gen)))
            return self.train(model, data, ctx, split_batches(mixed, ctx, self.batch_size, stream="mixed_batches"),
                              ce, steps_for(mixed, ctx, self.batch_size), base=base)
        forget = split_batches(data.forget, ctx, self.batch_size, stream="forget_batches")
        retain = split_batches(data.retain, ctx, self.batch_size, stream="retain_batches")

        def forget_then_retain(epoch: int):
            relabelled = ((x, self.draw(y, data.num_classes, gen)) for x, y in forget(epoch))
            return itertools.chain(relabelled, retain(epoch))

        steps = steps_for(data.forget, ctx, self.batch_size) + steps_for(data.retain, ctx, self.batch_size)
        return self.train(model, data, ctx, forget_then_retain, ce, steps, base=base)
