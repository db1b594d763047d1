"""Train a bank of small models at once (shadow models, oracle banks): one vmapped step for all.

Membership-inference shadow models and per-seed oracles are many copies of one small
architecture, each with its own seed and its own subset of one resident training split
(e.g. a random half). Trained one after another, each small model leaves most of the
hardware idle; here their parameters are stacked (``torch.func.stack_module_state``) and
one ``vmap``-ed ``functional_call`` runs every model's step in the same kernels.

Model ``k`` of a bank is the model ``fit`` would train alone, with
``torch.manual_seed(seeds[k])`` before ``model_factory()``, ``RunContext.seed = seeds[k]``,
the same ``stream`` and ``split.subset(masks[k])``: same initialisation, same batch order and
augmentation draws, same per-model learning-rate schedule (a model whose subset is
smaller takes fewer steps per epoch and skips the rest; skipped steps change nothing).
Models with buffers (batch norm) cannot share a vmapped step; they are trained one after
another with ``fit``, so the result is the same either way.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from unlearnbench.data.bundle import Split
from unlearnbench.engine import augment as aug
from unlearnbench.engine.context import RunContext
from unlearnbench.engine.loop import Recipe, epoch_draws, fit, lr_factor, n_batches

StateDict = Dict[str, Tensor]
_VMAPPED_OPTIMIZERS = ("sgd", "adam", "adamw")
_BETAS, _EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam/AdamW defaults, as make_optimizer uses them


def can_vmap(model: nn.Module, recipe: Recipe) -> bool:
    """True when the bank can share one vmapped step: no buffers, a supported optimizer."""
    return not any(True for _ in model.buffers()) and recipe.optimizer in _VMAPPED_OPTIMIZERS


def train_bank(model_factory: Callable[[], nn.Module], split: Split, masks: Tensor, recipe: Recipe,
               ctx: RunContext, seeds: Optional[Sequence[int]] = None, stream: str = "train_batches",
               group_size: Optional[int] = None, desc: str = "bank") -> List[StateDict]:
    """Trains one model per row of ``masks`` [K, N] (bool over ``split``'s rows).

    Args:
        model_factory: builds one fresh model (called after seeding with ``seeds[k]``).
        split: the resident training split every subset indexes into.
        masks: which rows model ``k`` trains on.
        recipe: the training recipe, shared by every model.
        ctx: device and progress settings; ``ctx.seed`` is replaced by ``seeds[k]``.
        seeds: one per model; default ``ctx.seed + k``.
        stream: the batch-order stream, as in ``fit``.
        group_size: models per vmapped group (bounds memory); default all at once.

    Returns:
        K state dicts on ``ctx.device``, in the order of ``masks``.
    """
    masks = torch.as_tensor(masks, dtype=torch.bool).cpu()
    if masks.ndim != 2 or masks.shape[1] != len(split):
        raise ValueError(f"masks must be [K, {len(split)}] bool, got {tuple(masks.shape)}")
    k_models = masks.shape[0]
    seeds = [ctx.seed + k for k in range(k_models)] if seeds is None else [int(s) for s in seeds]
    if len(seeds) != k_models:
        raise ValueError(f"{len(seeds)} seeds for {k_models} masks")
    subsets = [m.nonzero().squeeze(1) for m in masks]  # host indices, one sync-free pass
    if any(len(s) == 0 for s in subsets):
        raise ValueError("every mask must select at least one example")

    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(model_factory().to(ctx.device))
    if not can_vmap(models[0], recipe):
        out = []
        for model, s, idx in zip(models, seeds, subsets):
            fit(model, split.subset(idx), recipe, replace(ctx, seed=s), desc=desc, stream=stream)
            out.append(model.state_dict())
        return out
    size = group_size or k_models
    out = []
    for start in range(0, k_models, size):
        sl = slice(start, start + size)
        out += _train_group(models[sl], split, subsets[sl], seeds[sl], recipe, ctx, stream, desc)
    return out


def _train_group(models: List[nn.Module], split: Split, subsets: List[Tensor], seeds: List[int],
                 recipe: Recipe, ctx: RunContext, stream: str, desc: str) -> List[StateDict]:
    k_models, bs, dev = len(models), recipe.batch_size, ctx.device
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta").train()
    smoothing = recipe.label_smoothing

    def one_forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    forward = vmap(one_forward, randomness="different")

    def losses(p, b, x, y, w):
        """Per-model mean loss over its real rows; the loss is taken outside vmap (cheaper)."""
        logits = forward(p, b, x).float()
        ce = F.cross_entropy(logits.flatten(0, 1), y.reshape(-1), reduction="none",
                             label_smoothing=smoothing).view_as(w)
        return (ce * w).sum(1) / w.sum(1).clamp_min(1.0)

    gens = [replace(ctx, seed=s).generator(stream) for s in seeds]  # as fit's batch stream
    steps = [n_batches(len(idx), bs, recipe.max_batches) for idx in subsets]
    factors = [lr_factor(recipe, max(1, st * recipe.epochs)) for st in steps]
    opt = _StackedOptimizer(params, recipe, k_models)
    width = max(steps)
    bar = ctx.progress(range(recipe.epochs), desc=desc)
    for epoch in bar:
        rows, weights, draws = _epoch_table(split, subsets, gens, steps, bs, recipe.augment)
        lrs = torch.tensor([[recipe.scaled_lr * factors[k](epoch * steps[k] + s) if s < steps[k] else 0.0
                             for k in range(k_models)] for s in range(width)])
        active = torch.tensor([[s < steps[k] for k in range(k_models)] for s in range(width)])
        everyone = active.all(1).tolist()  # host copy: no device sync in the step loop
        rows, weights, lrs, active = (_to(t, dev) for t in (rows, weights, lrs, active))
        draws = None if draws is None else (draws.pin_memory() if dev.type == "cuda" else draws).to(
            dev, non_blocking=dev.type == "cuda")
        total = torch.zeros(k_models, device=dev)
        for s in range(width):
            cols = slice(s * bs, (s + 1) * bs)
            r = rows[:, cols].reshape(-1)
            x = aug.apply(split.x[r], None if draws is None else draws[cols].flat())
            x = x.view(k_models, -1, *split.x.shape[1:])
            y = split.y[r].view(k_models, -1)
            with ctx.autocast():
                loss = losses(params, buffers, x, y, weights[:, cols])
            loss.sum().backward()  # the models are independent: each gets its own gradient
            opt.step(lrs[s], active[s], everyone[s])
            total += loss.detach().float()
        if ctx.show_progress:
            bar.set_postfix(loss=f"{(total / torch.tensor(steps, device=dev)).mean().item():.4f}")
    return [{name: p[k].detach().clone() for name, p in {**params, **buffers}.items()}
            for k in range(k_models)]


def _to(t: Tensor, dev: torch.device) -> Tensor:
    if dev.type == "cuda":
        return t.pin_memory().to(dev, non_blocking=True)
    return t.to(dev)


class _Draws2D:
    """Augmentation draws laid out [K, steps * batch], sliced per step and flattened."""

    def __init__(self, d: aug.AugmentDraws):
        self.d = d

    def pin_memory(self) -> "_Draws2D":
        return _Draws2D(self.d.pin_memory())

    def to(self, dev: torch.device, non_blocking: bool = False) -> "_Draws2D":
        return _Draws2D(self.d.to(dev, non_blocking))

    def __getitem__(self, cols: slice) -> "_Draws2D":
        return _Draws2D(self.d[:, cols])

    def flat(self) -> aug.AugmentDraws:
        def f(t):
            return None if t is None else t.reshape(-1)

        return aug.AugmentDraws(f(self.d.flip), f(self.d.dy), f(self.d.dx))


def _epoch_table(split: Split, subsets: List[Tensor], gens: List[torch.Generator], steps: List[int],
                 bs: int, augment: str):
    """Rows [K, T*B] of ``split`` per model and step (padding: row 0, weight 0), and draws."""
    k_models, width = len(subsets), max(steps) * bs
    rows = torch.zeros(k_models, width, dtype=torch.long)
    weights = torch.zeros(k_models, width)
    flips = torch.zeros(k_models, width, dtype=torch.bool)
    dys = torch.zeros(k_models, width, dtype=torch.long)
    dxs = torch.zeros(k_models, width, dtype=torch.long)
    for k, (idx, g) in enumerate(zip(subsets, gens)):
        order, d = epoch_draws(len(idx), g, True, augment, torch.device("cpu"))
        m = min(len(idx), steps[k] * bs)
        rows[k, :m] = idx[order[:m]]
        weights[k, :m] = 1.0
        if d is not None:
            flips[k, :m] = d.flip[:m]
            if d.dy is not None:
                dys[k, :m], dxs[k, :m] = d.dy[:m], d.dx[:m]
    if augment == "none":
        return rows, weights, None
    crop = augment == "crop_flip"
    return rows, weights, _Draws2D(aug.AugmentDraws(flips, dys if crop else None, dxs if crop else None))


class _StackedOptimizer:
    """SGD / Adam / AdamW on stacked [K, ...] parameters with a learning rate per model.

    Follows torch.optim's update rules (no dampening, no Nesterov, no AMSGrad); a model
    that is inactive at a step (``lr`` 0, ``active`` False) keeps its parameters and
    optimizer state unchanged.
    """

    def __init__(self, params: Dict[str, Tensor], recipe: Recipe, k_models: int):
        self.params = list(params.values())
        self.kind, self.r = recipe.optimizer, recipe
        self.state = [torch.zeros_like(p) for p in self.params]
        self.state_sq = [torch.zeros_like(p) for p in self.params] if self.kind != "sgd" else None
        self.t = torch.zeros(k_models, device=self.params[0].device)

    @torch.no_grad()
    def step(self, lr: Tensor, active: Tensor, everyone: bool) -> None:
        """One update; ``everyone`` (host bool) selects the in-place path with no masking."""
        wd = self.r.weight_decay
        self.t += active.float()
        for i, p in enumerate(self.params):
            shape = (-1,) + (1,) * (p.ndim - 1)
            lr_k, on = lr.view(shape), active.view(shape)
            g = p.grad
            if self.kind == "sgd":
                if wd:
                    g.add_(p, alpha=wd)
                if self.r.momentum:
                    if everyone:
                        self.state[i].mul_(self.r.momentum).add_(g)
                    else:
                        self.state[i] = torch.where(on, self.state[i] * self.r.momentum + g, self.state[i])
                    g = self.state[i]
                p.addcmul_(g, lr_k, value=-1.0)  # lr is 0 for inactive models
            else:
                b1, b2 = _BETAS
                if self.kind == "adamw":
                    p.mul_(1 - lr_k * wd)
                elif wd:
                    g.add_(p, alpha=wd)
                if everyone:
                    self.state[i].lerp_(g, 1 - b1)
                    self.state_sq[i].mul_(b2).addcmul_(g, g, value=1 - b2)
                else:
                    self.state[i] = torch.where(on, self.state[i].lerp(g, 1 - b1), self.state[i])
                    self.state_sq[i] = torch.where(on, self.state_sq[i] * b2 + (1 - b2) * g * g,
                                                   self.state_sq[i])
                t = self.t.clamp_min(1).view(shape)
                bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
                denom = (self.state_sq[i].sqrt() / bc2.sqrt()).add_(_EPS)
                p.addcdiv_(self.state[i] * (lr_k / bc1), denom, value=-1.0)
            p.grad = None


def random_halves(n: int, k_models: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """[K, N] masks, each selecting a uniformly random half of N rows (shadow-model splits)."""
    scores = torch.rand(k_models, n, generator=generator)
    ranks = scores.argsort(1).argsort(1)
    return ranks < math.ceil(n / 2)
