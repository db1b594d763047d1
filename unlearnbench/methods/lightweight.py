"""``lightweight``: small weight noise, then SGD on D_r until D_f looks unseen (Chen et al. 2021).

[abstract] perturb the target model slightly, then iterate towards the model trained on the
remaining data until the forget data's contribution is gone. [reconstructed] the noise scale
(per-tensor std), the optimiser (SGD at the recipe's lr × ``lr_scale``, constant) and the
stopping rule: forget accuracy ≤ validation accuracy + ``delta`` (and optionally a
loss-threshold MIA at chance + ``delta``), checked every ``check_every`` steps.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearnbench.engine import batches, predict
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import ce, check_positive, run_epochs, steps_for
from unlearnbench.methods.localize import Localization
from unlearnbench.registry import METHODS


def threshold_mia_acc(member_losses: Tensor, nonmember_losses: Tensor) -> Tensor:
    """Best balanced accuracy of a loss-threshold attack (loss ≤ t ⇒ member), on the device.

    Balanced accuracy ½(TPR + TNR) needs no subsampling of the larger group; the threshold
    is the best one for these very losses, so this upper-bounds any single-threshold attack
    (0.5 = chance). Ties are only cut between distinct loss values.
    """
    losses = torch.cat([member_losses, nonmember_losses]).float()
    is_member = torch.cat([torch.ones_like(member_losses), torch.zeros_like(nonmember_losses)]).float()
    order = losses.argsort()
    sorted_losses, is_member = losses[order], is_member[order]
    tpr = is_member.cumsum(0) / max(len(member_losses), 1)
    fpr = (1 - is_member).cumsum(0) / max(len(nonmember_losses), 1)
    cut = torch.ones_like(sorted_losses, dtype=torch.bool)
    cut[:-1] = sorted_losses[1:] != sorted_losses[:-1]
    balanced = torch.where(cut, 0.5 * (tpr + 1 - fpr), torch.full_like(tpr, 0.5))
    return balanced.max().clamp_min(0.5)


@METHODS.register("lightweight")
class Lightweight(Method):
    version = "2-reconstructed"  # 2: named random streams

    def __init__(self, sigma: float = 0.01, lr_scale: float = 1.0, check_every: int = 50,
                 delta: float = 0.01, mia_stop: bool = False, max_epochs: int = 2,
                 batch_size: Optional[int] = 256, localize: str = "none",
                 localize_budget: float = 0.3):
        self.localization = Localization(localize, localize_budget)
        if sigma is None or sigma < 0:
            raise ConfigError("method.sigma", f"must be >= 0, got {sigma}")
        check_positive(lr_scale, "method.lr_scale")
        check_positive(check_every, "method.check_every")
        if delta is None or not 0.0 <= delta < 1.0:
            raise ConfigError("method.delta", f"accuracy margin as a fraction in [0, 1), got {delta}")
        check_positive(max_epochs, "method.max_epochs")
        if batch_size is not None:
            check_positive(batch_size, "method.batch_size")
        self.sigma, self.lr_scale, self.check_every, self.delta = sigma, lr_scale, check_every, delta
        self.mia_stop, self.max_epochs, self.batch_size = mia_stop, max_epochs, batch_size

    @torch.no_grad()
    def perturb(self, model, generator: torch.Generator) -> None:
        """θ ← θ + ε, ε ~ N(0, (σ·std(θ_tensor))²) for every parameter tensor."""
        for p in model.parameters():
            scale = self.sigma * p.float().std(correction=0)
            p.add_((torch.randn(p.shape, generator=generator).to(p.device) * scale).to(p.dtype))

    def looks_unseen(self, model, data, ctx) -> Tensor:
        """[stop?, forget acc, val acc, mia acc] as one device tensor (one host sync to read)."""
        logits_f, logits_v = predict(model, data.forget.x, ctx), predict(model, data.val.x, ctx)
        fa = logits_f.argmax(1).eq(data.forget.y).float().mean()
        va = logits_v.argmax(1).eq(data.val.y).float().mean()
        stop = fa <= va + self.delta
        mia = torch.full_like(fa, float("nan"))
        if self.mia_stop:
            mia = threshold_mia_acc(F.cross_entropy(logits_f, data.forget.y, reduction="none"),
                                    F.cross_entropy(logits_v, data.val.y, reduction="none"))
            stop = stop & (mia <= 0.5 + self.delta)
        return torch.stack([stop.float(), fa, va, mia])

    def unlearn(self, model, data, ctx):
        self.perturb(model, ctx.generator("perturb_noise"))
        r, gen = ctx.recipe, ctx.generator("retain_batches")
        bs = self.batch_size or r.batch_size
        state = {"steps": 0, "stop": False, "checks": []}

        def make_batches(_):
            for batch in batches(data.retain, bs, gen, max_batches=r.max_batches, augment=r.augment):
                if state["stop"]:
                    return
                yield batch

        def check() -> None:
            state["steps"] += 1
            if state["steps"] % self.check_every == 0:
                stop, fa, va, mia = self.looks_unseen(model, data, ctx).tolist()
                state["checks"].append({"step": state["steps"], "forget_acc": fa, "val_acc": va,
                                        "mia_acc": mia, "stop": bool(stop)})
                state["stop"] = bool(stop)

        per_epoch = steps_for(data.retain, ctx, self.batch_size)
        # With `localize`, only masked entries move after the perturbation (the mask is
        # computed on the perturbed model, the one the SGD phase starts from).
        with self.localization.restrict(model, data, ctx) as hooks:
            run_epochs(model, make_batches, ce, ctx, "lightweight", self.max_epochs,
                       r.scaled_lr * self.lr_scale, per_epoch, optimizer="sgd", schedule="constant",
                       after_step=(*hooks, check))
        # The check history makes the stopping decision auditable (and testable).
        stats = {"steps": state["steps"], "epochs": state["steps"] / per_epoch,
                 "stopped_early": float(state["stop"]), **self.localization.stats()}
        return Unlearned(model, stats, {"checks": state["checks"]})
