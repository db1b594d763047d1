"""Fine-grained parameter perturbation shared by ``topk`` and ``randomk`` (Zuo et al.).

Importance scoring, selection of a parameter subset, Gaussian perturbation of that subset
only, and the gradient/restore hooks that let a repair fine-tune move only the subset.
Masks are one bool tensor per parameter, keyed by the parameter's name.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import RunContext, batches
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method, UnlearnData, Unlearned
from unlearnbench.methods.common import ce, check_positive, run_epochs, split_batches, steps_for
from unlearnbench.methods.localize import Localization, ParamMask

Masks = Dict[str, Tensor]

IMPORTANCES = ("logit_norm", "loss")
SCOPES = ("global", "per_layer")
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def check_selection_keys(fraction: float, scope: str, sigma: float) -> None:
    """Validates the keys every perturbation method shares (raised in constructors)."""
    if fraction is None or not 0.0 < fraction < 1.0:
        raise ConfigError("method.fraction", f"must be in (0, 1), got {fraction}")
    if scope not in SCOPES:
        raise ConfigError("method.scope", f"'{scope}' is not one of {'|'.join(SCOPES)}")
    if sigma is None or sigma < 0:
        raise ConfigError("method.sigma", f"must be >= 0, got {sigma}")


def candidates(model: nn.Module, include_norm: bool) -> Dict[str, nn.Parameter]:
    """Parameters eligible for selection: all of them, minus norm layers unless included.

    Norm-layer affine parameters are few but rescale whole channels, so perturbing them is a
    different intervention from perturbing individual weights; they are opt-in.
    """
    skip = set()
    if not include_norm:
        for mod_name, module in model.named_modules():
            if isinstance(module, _NORM_TYPES):
                skip.update(f"{mod_name}.{p}" if mod_name else p
                            for p, _ in module.named_parameters(recurse=False))
    return {name: p for name, p in model.named_parameters() if name not in skip}


def selection_size(n: int, fraction: float) -> int:
    """⌈fraction·n⌉, computed so float error cannot add one (0.01·300 must be 3, not 4)."""
    return min(n, max(1, math.ceil(round(fraction * n, 9))))


def importance(model: nn.Module, params: Dict[str, Tensor], forget: Split, ctx: RunContext,
               kind: str, batch_size: int) -> Dict[str, Tensor]:
    """Ω = mean over D_f of |∂F/∂θ| (memory-aware-synapses form), batch-level.

    ``logit_norm``: F = ½‖logits‖² (label-free, MAS); ``loss``: F = cross-entropy on the
    label. Each batch contributes |∇ of the batch-mean F| weighted by its size, so
    ``batch_size=1`` gives the exact per-example MAS average. ``params``: name -> parameter
    of ``model`` to score. Scored in eval mode so
    BatchNorm uses its running statistics and the model is not changed.
    """
    totals = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
    was_training = model.training
    model.eval()
    seen = 0
    for x, y in batches(forget, batch_size, shuffle=False, max_batches=ctx.recipe.max_batches):
        with ctx.autocast():
            logits = model(x).float()
        if kind == "logit_norm":
            value = 0.5 * logits.pow(2).sum(1).mean()
        else:
            value = F.cross_entropy(logits, y)
        grads = torch.autograd.grad(value, list(params.values()), allow_unused=True)
        for (name, _), g in zip(params.items(), grads):
            if g is not None:
                totals[name].add_(g.float().abs(), alpha=float(len(y)))
        seen += len(y)
    model.train(was_training)
    return {name: t / max(seen, 1) for name, t in totals.items()}


def _masks_from_flat(chosen: Tensor, params: Dict[str, Tensor]) -> Masks:
    flat = torch.zeros(sum(p.numel() for p in params.values()), dtype=torch.bool, device=chosen.device)
    flat[chosen] = True
    masks, start = {}, 0
    for name, p in params.items():
        masks[name] = flat[start:start + p.numel()].view_as(p).to(p.device)
        start += p.numel()
    return masks


def top_fraction(scores: Dict[str, Tensor], fraction: float, scope: str) -> Masks:
    """The ``fraction`` of entries with the largest score, globally or within each tensor."""
    if scope == "per_layer":
        masks = {}
        for name, s in scores.items():
            flat = torch.zeros(s.numel(), dtype=torch.bool, device=s.device)
            flat[s.reshape(-1).topk(selection_size(s.numel(), fraction)).indices] = True
            masks[name] = flat.view_as(s)
        return masks
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    return _masks_from_flat(flat.topk(selection_size(flat.numel(), fraction)).indices, scores)


def random_fraction(params: Dict[str, Tensor], fraction: float, scope: str,
                    generator: torch.Generator) -> Masks:
    """Exactly ⌈fraction·n⌉ entries drawn uniformly without replacement (per tensor or global)."""
    if scope == "per_layer":
        masks = {}
        for name, p in params.items():
            flat = torch.zeros(p.numel(), dtype=torch.bool)
            flat[torch.randperm(p.numel(), generator=generator)[:selection_size(p.numel(), fraction)]] = True
            masks[name] = flat.view_as(p).to(p.device)
        return masks
    n = sum(p.numel() for p in params.values())
    return _masks_from_flat(torch.randperm(n, generator=generator)[:selection_size(n, fraction)], params)


@torch.no_grad()
def perturb_selected(model: nn.Module, masks: Masks, sigma: float, relative: bool,
                     generator: torch.Generator) -> None:
    """θ ← θ + ε on selected entries only, ε ~ N(0, σ²) or N(0, (σ·|θ|)²) when ``relative``.

    ``torch.where`` keeps every unselected entry bit-identical (no ``θ + 0`` rounding).
    """
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        p = params[name]
        noise = torch.randn(p.shape, generator=generator).to(device=p.device, dtype=p.dtype) * sigma
        if relative:
            noise = noise * p.abs()
        p.copy_(torch.where(mask, p + noise, p))


def selected_mask(model: nn.Module, masks: Masks) -> ParamMask:
    """The selection as a whole-model update mask (unselected tensors fully frozen)."""
    return ParamMask({n: masks[n] if n in masks else torch.zeros_like(p, dtype=torch.bool)
                      for n, p in model.named_parameters()})


def mask_count(masks: Masks) -> int:
    return int(sum(int(m.sum()) for m in masks.values()))


class SubsetPerturbation(Method):
    """Select a parameter subset, perturb it with Gaussian noise, repair on D_r.

    Subclasses implement ``select``; everything else (keys, perturbation, repair, timing of
    the selection as ``ctx.timings["precompute_s"]``) is shared.
    """

    def __init__(self, fraction: float = 0.01, scope: str = "global", sigma: float = 0.1,
                 relative: bool = False, include_norm: bool = False, repair_epochs: int = 1,
                 repair_only_selected: bool = False, repair_lr: Optional[float] = None,
                 repair_batch_size: Optional[int] = None, localize: str = "none",
                 localize_budget: float = 0.3):
        self.localization = Localization(localize, localize_budget)
        check_selection_keys(fraction, scope, sigma)
        if repair_epochs is None or repair_epochs < 0:
            raise ConfigError("method.repair_epochs", f"must be >= 0, got {repair_epochs}")
        if repair_lr is not None:
            check_positive(repair_lr, "method.repair_lr")
        if repair_batch_size is not None:
            check_positive(repair_batch_size, "method.repair_batch_size")
        self.fraction, self.scope, self.sigma, self.relative = fraction, scope, sigma, relative
        self.include_norm, self.repair_epochs = include_norm, repair_epochs
        self.repair_only_selected, self.repair_lr = repair_only_selected, repair_lr
        self.repair_batch_size = repair_batch_size

    def select(self, model: nn.Module, params: Dict[str, Tensor], data: UnlearnData,
               ctx: RunContext) -> Masks:
        raise NotImplementedError

    def perturb(self, model: nn.Module, data: UnlearnData, ctx: RunContext) -> Masks:
        """Steps 1-3: select (timed as precompute) and perturb; returns the masks."""
        params = candidates(model, self.include_norm)
        with ctx.timer("precompute"):
            masks = self.select(model, params, data, ctx)
        perturb_selected(model, masks, self.sigma, self.relative, ctx.generator("perturb_noise"))
        return masks

    def unlearn(self, model, data, ctx):
        masks = self.perturb(model, data, ctx)
        stats = {"selected": mask_count(masks)}
        if self.repair_epochs == 0:
            return Unlearned(model, stats)
        # repair_only_selected: the perturbed entries are the method's own update mask,
        # intersected with any `localize` mask; everything else stays bit-identical.
        own = selected_mask(model, masks) if self.repair_only_selected else None
        lr = self.repair_lr or ctx.recipe.scaled_lr  # the peak lr the recipe trained at
        with self.localization.restrict(model, data, ctx, base=own) as hooks:
            run_epochs(model, split_batches(data.retain, ctx, self.repair_batch_size, stream="retain_batches"), ce,
                       ctx, f"{self.registry_name} repair", self.repair_epochs, lr,
                       steps_for(data.retain, ctx, self.repair_batch_size), after_step=hooks)
        return Unlearned(model, {**stats, **self.localization.stats()})
