"""``unsir``: error-maximising noise, impair, repair (Tarun et al., IEEE TNNLS 2023). [code]

Official code: github.com/vikram2000b/Fast-Machine-Unlearning, ``Machine Unlearning.ipynb``,
commit 252bc9287a511774ab857d1f682845f28584eb25 (the same procedure is in
vikram2000b/bad-teaching-unlearning ``unlearn.py`` ``UNSIR_noise_train``, commit f1aa988).

1. Noise: for every class c present in D_f, a learnable batch of ``noise_batch`` inputs
   N ~ N(0, 1) is optimised with Adam (lr ``noise_lr``) for ``noise_steps`` steps to
   *maximise* the cross-entropy of label c: loss = −CE(f(N), c) + ``noise_l2``·mean ‖N‖².
2. Impair: one epoch (Adam, lr ``impair_lr``) on the noise batches, each repeated
   ``noise_repeats`` times with label c, shuffled together with ``retain_per_class``
   examples of every class of D_r.
3. Repair: one epoch (Adam, lr ``repair_lr``) on those retain examples alone.

Official settings (CIFAR-10): noise 256 × (5 epochs × 8 steps) at lr 0.1, 20 repeats, 1000
retain examples per class, impair lr 0.02, repair lr 0.01, batch 256, Adam without weight
decay. Choices of ours: the notebook labels every noise batch with class 0 (``class_num``
is never updated; the bad-teaching repository labels noise c with c) — we label with c; the
retain examples are a seeded sample per class, not the first ones; the model is scored in
eval mode while the noise is optimised (the notebook leaves it in train mode, which would
let BatchNorm statistics drift on noise). The method is defined for class forgetting; on a
random forget set every class is present in D_f and gets a noise batch.
"""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import train_loop
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import capped, ce, check_nonnegative, check_positive, concat, split_batches
from unlearnbench.registry import METHODS


def error_maximising_noise(model: nn.Module, label: int, shape, steps: int, lr: float, l2: float,
                           generator: torch.Generator, device) -> Tensor:
    """A batch of inputs that maximises CE(model(N), label) under an L2 penalty (official loss)."""
    noise = torch.randn(*shape, generator=generator).to(device).requires_grad_(True)
    opt = torch.optim.Adam([noise], lr=lr)
    target = torch.full((shape[0],), label, dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    for _ in range(steps):
        loss = -F.cross_entropy(model(noise), target) + l2 * noise.square().flatten(1).sum(1).mean()
        grad, = torch.autograd.grad(loss, [noise])
        opt.zero_grad(set_to_none=True)
        noise.grad = grad
        opt.step()
    model.train(was_training)
    return noise.detach()


def per_class_sample(split: Split, count: int, generator: torch.Generator) -> Split:
    """Up to ``count`` seeded examples of every class present in ``split``."""
    order = torch.randperm(len(split), generator=generator).to(split.y.device)
    y = split.y[order]
    keep = [order[y == c][:count] for c in torch.unique(split.y).tolist()]
    return split.subset(torch.cat(keep))


@METHODS.register("unsir")
class Unsir(Method):
    version = "1"

    def __init__(self, noise_batch: int = 256, noise_steps: int = 40, noise_lr: float = 0.1,
                 noise_l2: float = 0.1, noise_repeats: int = 20, retain_per_class: int = 1000,
                 impair_lr: float = 0.02, repair_lr: float = 0.01, batch_size: int = 256):
        for key, value in (("noise_batch", noise_batch), ("noise_steps", noise_steps), ("noise_lr", noise_lr),
                           ("noise_repeats", noise_repeats), ("retain_per_class", retain_per_class),
                           ("impair_lr", impair_lr), ("repair_lr", repair_lr), ("batch_size", batch_size)):
            check_positive(value, f"method.{key}")
        check_nonnegative(noise_l2, "method.noise_l2")
        self.noise_batch, self.noise_steps, self.noise_lr = noise_batch, noise_steps, noise_lr
        self.noise_l2, self.noise_repeats, self.retain_per_class = noise_l2, noise_repeats, retain_per_class
        self.impair_lr, self.repair_lr, self.batch_size = impair_lr, repair_lr, batch_size

    def noise_split(self, model: nn.Module, forget: Split, ctx) -> Split:
        gen = ctx.generator("unsir_noise")
        shape = (self.noise_batch, *forget.x.shape[1:])
        parts = []
        for c in torch.unique(forget.y).tolist():
            noise = error_maximising_noise(model, c, shape, capped(self.noise_steps, ctx), self.noise_lr,
                                           self.noise_l2, gen, forget.x.device)
            label = torch.full((self.noise_batch,), c, dtype=torch.long, device=forget.y.device)
            parts.append(Split(noise.repeat(self.noise_repeats, *[1] * (noise.ndim - 1)),
                               label.repeat(self.noise_repeats)))
        return concat(*parts)

    def epoch(self, model: nn.Module, split: Split, lr: float, ctx, stream: str, desc: str) -> None:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        train_loop(model, split_batches(split, ctx, self.batch_size, stream=stream, augment=False),
                   ce, opt, 1, ctx, desc)

    def unlearn(self, model, data, ctx):
        with ctx.timer("precompute"):
            noise = self.noise_split(model, data.forget, ctx)
        retain = per_class_sample(data.retain, self.retain_per_class, ctx.generator("retain_subset"))
        self.epoch(model, concat(noise, retain), self.impair_lr, ctx, "impair_batches", "unsir impair")
        self.epoch(model, retain, self.repair_lr, ctx, "repair_batches", "unsir repair")
        stats: Dict[str, float] = {"noise_classes": float(len(torch.unique(data.forget.y))),
                                   "retain_used": float(len(retain))}
        return Unlearned(model, stats)
