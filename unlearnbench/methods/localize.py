"""Parameter localization: which weights an unlearning method may change.

DEL (Torkzadehmahani et al., TMLR 2025) shows that restricting an unlearning method to a
small, well-chosen set of parameters (its mask) is itself the key ingredient, so the mask is
a reusable piece here, not a DEL internal. Three things live in this module:

* mask builders — ``del_mask`` (|θ⊙G| with channel granularity, DEL's official rule),
  ``saliency_mask`` (SalUn: top share of |G|, element-wise) and ``random_mask``;
* ``ParamMask`` — a boolean tensor per named parameter, ``True`` = may change, with
  ``restrict(model)`` that keeps every ``False`` element bit-identical through any
  optimizer (gradients zeroed in the backward pass *and* values restored after each step,
  because weight decay and momentum move parameters whose gradient is zero);
* ``Localization`` — the ``localize`` / ``localize_budget`` method keys. A method opts in by
  taking both keys in its constructor and wrapping its training loop::

      self.localization = Localization(localize, localize_budget)   # in __init__: validates
      with self.localization.restrict(model, data, ctx) as hooks:   # in unlearn
          run_epochs(..., after_step=hooks)

  With ``localize: none`` the context yields no hooks and costs nothing.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import RunContext, batches
from unlearnbench.engine.context import stream_seed
from unlearnbench.errors import ConfigError
from unlearnbench.models import classifier_of

log = logging.getLogger("unlearnbench")

CRITERIA = ("weighted_grad", "grad", "weight", "weighted_grad_all")
CHANNEL_TOPK = ("out_fraction", "row_fraction", "mean")
LOCALIZE = ("none", "del", "salun", "random")
SCORE_BATCH = 128  # DEL scores D_f in batches of 128 (official code)


def check_fraction(value, key: str) -> float:
    """A share of parameters in (0, 1]; anything else is a config error naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ConfigError(key, f"must be a fraction in (0, 1], got {value!r}")
    return float(value)


def check_choice(value, choices: Sequence[str], key: str) -> str:
    if value not in choices:
        raise ConfigError(key, f"'{value}' is not one of {'|'.join(choices)}")
    return value


def budget_count(fraction: float, total: int) -> int:
    """Number of masked elements: round(fraction · total), at least 1.

    Rounding (not ceil) so that budget 0.3 of 10 elements is 3, not ceil(3.0000000000000004) = 4.
    """
    return min(total, max(1, int(round(fraction * total))))


# ----------------------------------------------------------------------------- the mask

@dataclass
class ParamMask:
    """A boolean mask per named parameter; ``True`` marks elements that may change."""

    allowed: Dict[str, Tensor]

    @property
    def fraction(self) -> float:
        """Share of all parameter elements that are allowed to change."""
        on = sum(int(m.sum()) for m in self.allowed.values())
        return on / max(1, sum(m.numel() for m in self.allowed.values()))

    def __and__(self, other: "ParamMask") -> "ParamMask":
        return ParamMask({n: m & other.allowed[n] for n, m in self.allowed.items()})

    def with_trainable(self, model: nn.Module, module: Optional[nn.Module]) -> "ParamMask":
        """The same mask with every parameter of ``module`` (e.g. the classifier) allowed."""
        if module is None:
            return self
        ids = {id(p) for p in module.parameters()}
        return ParamMask({n: torch.ones_like(self.allowed[n]) if id(p) in ids else self.allowed[n]
                          for n, p in model.named_parameters() if n in self.allowed})

    @contextlib.contextmanager
    def restrict(self, model: nn.Module) -> Iterator[Tuple[Callable[[], None], ...]]:
        """Freezes the masked-out elements of ``model`` while the context is open.

        Installs gradient hooks that zero masked-out gradient entries (so momentum and Adam
        moments never see them) and yields an ``after_step`` hook for ``train_loop`` that
        writes back their saved values (so decoupled or L2 weight decay cannot move them).
        Buffers (BatchNorm statistics) are not parameters and update freely.
        """
        handles, frozen = [], []
        for name, p in model.named_parameters():
            m = self.allowed[name].to(p.device)
            if bool(m.all()):
                continue  # fully trainable: nothing to guard
            off = ~m
            handles.append(p.register_hook(lambda g, off=off: g.masked_fill(off, 0)))
            frozen.append((p, m, p.detach().clone()))

        @torch.no_grad()
        def restore() -> None:
            for p, m, saved in frozen:
                torch.where(m, p, saved, out=p)  # in place: no allocation per step

        try:
            yield (restore,) if frozen else ()
        finally:
            for h in handles:
                h.remove()


# ----------------------------------------------------------------------------- scores

def accumulate_grads(model: nn.Module, split: Split, ctx: RunContext,
                     batch_size: int = SCORE_BATCH) -> Dict[str, Tensor]:
    """G = Σ_batches ∇θ CE(f(x_b), y_b) over ``split``, with the model in eval mode.

    Batch-mean losses summed over batches, as DEL's and SalUn's official code accumulate
    them; the recipe's ``max_batches`` cap (debug runs) applies. The model's mode and its
    parameters' ``.grad`` are left as they were.
    """
    was_training = model.training
    model.eval()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = {n: torch.zeros_like(p) for n, p in params}
    for x, y in batches(split, batch_size, shuffle=False, max_batches=ctx.recipe.max_batches):
        with ctx.autocast():
            loss = F.cross_entropy(model(x), y)
        for (n, _), g in zip(params, torch.autograd.grad(loss.float(), [p for _, p in params],
                                                         allow_unused=True)):
            if g is not None:
                grads[n] += g.float()
    model.train(was_training)
    return grads


def channel_scores(score: Tensor, channel_topk: str = "out_fraction") -> Tensor:
    """DEL's channel granularity: every row of ``score`` viewed as [out, -1] gets one value.

    ``out_fraction`` (official): the mean of the row's top-h entries with
    h = max(1, int(0.1 · out)) — h depends on the number of rows, as in the official code,
    and is capped at the row length. ``row_fraction``: h = max(1, int(0.1 · row length)).
    ``mean``: the row mean. 1-D tensors are returned unchanged (element-wise scores).
    """
    if score.ndim <= 1:
        return score
    rows = score.reshape(score.shape[0], -1)
    if channel_topk == "mean":
        per_row = rows.mean(dim=1)
    else:
        n = rows.shape[0] if channel_topk == "out_fraction" else rows.shape[1]
        h = min(rows.shape[1], max(1, int(0.1 * n)))
        per_row = rows.topk(h, dim=1).values.mean(dim=1)
    return per_row.view(-1, *([1] * (score.ndim - 1))).expand_as(score)


def top_fraction(scores: Dict[str, Tensor], fraction: float) -> ParamMask:
    """``True`` on exactly round(fraction · N) elements with the largest scores, ranked
    globally over all tensors; ties (channel scores share one value per row) are broken by
    position (parameter order, then element order), so the count is exact and deterministic."""
    names = list(scores)
    flat = torch.cat([scores[n].detach().reshape(-1).float() for n in names])
    k = budget_count(fraction, flat.numel())
    order = torch.sort(flat, descending=True, stable=True).indices[:k]
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    chosen[order] = True
    out, start = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = chosen[start:start + size].view_as(scores[n])
        start += size
    return ParamMask(out)


def del_scores(model: nn.Module, grads: Optional[Dict[str, Tensor]], criterion: str,
               channel_topk: str) -> Dict[str, Tensor]:
    """Per-element DEL scores before ranking (steps 1–2 of the method)."""
    out = {}
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        w = p.detach().float().abs()
        if criterion == "weight":
            s = w
        elif criterion == "grad":
            s = grads[n].abs()
        else:  # weighted_grad, weighted_grad_all
            s = w * grads[n].abs()
        out[n] = channel_scores(s, channel_topk)
    return out


def del_mask(model: nn.Module, forget: Split, retain: Split, ctx: RunContext,
             budget: float = 0.3, criterion: str = "weighted_grad",
             channel_topk: str = "out_fraction") -> ParamMask:
    """DEL's mask: score, channel granularity, top ``budget`` of all elements (steps 1–3)."""
    grads = None
    if criterion != "weight":
        split = forget if criterion != "weighted_grad_all" else Split(
            torch.cat([forget.x, retain.x]), torch.cat([forget.y, retain.y]))
        grads = accumulate_grads(model, split, ctx)
    return top_fraction(del_scores(model, grads, criterion, channel_topk), budget)


def saliency_mask(model: nn.Module, forget: Split, ctx: RunContext, fraction: float = 0.5) -> ParamMask:
    """SalUn's weight saliency: top ``fraction`` of |Σ_b ∇θ CE(D_f)|, element-wise, global."""
    grads = accumulate_grads(model, forget, ctx)
    return top_fraction({n: g.abs() for n, g in grads.items()}, fraction)


def random_mask(model: nn.Module, ctx: RunContext, fraction: float) -> ParamMask:
    """Exactly round(fraction · N) elements drawn uniformly without replacement (seeded)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    total = sum(p.numel() for _, p in params)
    noise = torch.rand(total, generator=ctx.generator("localize_mask"))
    scores, start = {}, 0
    for n, p in params:
        scores[n] = noise[start:start + p.numel()].view_as(p).to(p.device)
        start += p.numel()
    return top_fraction(scores, fraction)


# ----------------------------------------------------------------------------- reset

def fresh_init(model: nn.Module, ctx: RunContext, stream: str,
               new_model: Optional[Callable[[], nn.Module]] = None) -> nn.Module:
    """A newly initialised model of the same architecture, seeded from the run seed.

    ``new_model`` (the pipeline passes ``UnlearnData.new_model``: ``build_model`` on the
    run's model config) runs under a forked RNG seeded from the run seed and ``stream``, so
    θ_init differs from the original's own initialisation and the global RNG is untouched.
    Without it, a deep copy whose modules call ``reset_parameters()``.
    """
    seed = stream_seed(ctx.seed, stream)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if new_model is not None:
            fresh = new_model()
        else:
            fresh = copy.deepcopy(model)
            for module in fresh.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    return fresh.to(next(model.parameters()).device)


@torch.no_grad()
def reset_masked(model: nn.Module, init: nn.Module, mask: ParamMask) -> None:
    """θ ← (1 − m)⊙θ + m⊙θ_init (DEL step 4), in place."""
    init_params = dict(init.named_parameters())
    for n, p in model.named_parameters():
        if n in mask.allowed:
            p.copy_(torch.where(mask.allowed[n].to(p.device), init_params[n].to(p.dtype), p))


# ----------------------------------------------------------------------------- method keys

class Localization:
    """The ``localize`` / ``localize_budget`` keys every gradient-based method can take.

    ``del``: DEL's mask (weighted_grad, out_fraction channels); ``salun``: SalUn saliency;
    ``random``: a seeded random mask; ``none``: no restriction. The classifier stays fully
    trainable (DEL's rule). The mask is computed once, before the method's loop, and its
    time is added to ``ctx.timings["precompute_s"]``.
    """

    def __init__(self, localize: str = "none", budget: float = 0.3):
        self.kind = check_choice(localize, LOCALIZE, "method.localize")
        self.budget = check_fraction(budget, "method.localize_budget")
        self.fraction: Optional[float] = None  # of the last mask applied, for the run's stats

    def stats(self) -> Dict[str, float]:
        """``localize_fraction``: share of parameter elements the last restriction let move."""
        return {} if self.fraction is None else {"localize_fraction": self.fraction}

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def mask(self, model: nn.Module, data, ctx: RunContext) -> Optional[ParamMask]:
        """The localization mask of ``model`` for this run (None when ``localize: none``)."""
        if not self.active:
            return None
        with ctx.timer("precompute"):
            if self.kind == "del":
                m = del_mask(model, data.forget, data.retain, ctx, self.budget)
            elif self.kind == "salun":
                m = saliency_mask(model, data.forget, ctx, self.budget)
            else:
                m = random_mask(model, ctx, self.budget)
            return m.with_trainable(model, classifier_of(model))

    @contextlib.contextmanager
    def restrict(self, model: nn.Module, data, ctx: RunContext,
                 base: Optional[ParamMask] = None) -> Iterator[Tuple[Callable[[], None], ...]]:
        """Computes the mask, intersects it with ``base`` (a method's own mask, e.g.
        SalUn's) and keeps everything outside bit-identical; yields ``after_step`` hooks."""
        mask = self.mask(model, data, ctx)
        if base is not None:
            mask = base if mask is None else base & mask
        if mask is None:
            yield ()
            return
        if self.active:  # a method's own mask alone (SalUn's) is the method's to report
            self.fraction = mask.fraction
        log.info("update mask (localize=%s%s): %.6f of parameter elements may change",
                 self.kind, ", with the method's own mask" if base is not None else "", mask.fraction)
        with mask.restrict(model) as hooks:
            yield hooks
