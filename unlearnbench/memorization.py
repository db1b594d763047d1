"""Memorization scores: which training examples a model is only right about when it saw them.

Two proxies, both cached in the model cache (stage ``memorization``) under a content key:

- ``heldout`` (Feldman & Zhang, NeurIPS 2020, "What neural networks memorize and why"):
  a bank of K models of the run's architecture and recipe, trained in complementary pairs
  on random halves of the training split, so every example is in exactly K/2 models and
  out of K/2. ``score = P(correct | in) - P(correct | out)``. Keyed by (data, model,
  recipe, K): every seed of a sweep shares it. Its per-model statistics are kept for
  per-example audits (see ``heldout_arrays``).
- ``learning_events`` (the cheap proxy of Jiang et al., ICML 2021, used by RUM, Zhao et
  al., NeurIPS 2024): from the original's own training, the true-class probability of every
  training example after every epoch; ``score = 1 - mean over epochs`` (high: learned late
  or unstably). It costs one forward pass over the training split per epoch and trains
  the original the pipeline then finds in the cache, so no extra model is trained. Keyed
  by the original's key: one per seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import DataBundle
from unlearnbench.engine import RunContext, predict
from unlearnbench.engine.context import stream_seed

if TYPE_CHECKING:
    from unlearnbench.plan import Plan

log = logging.getLogger("unlearnbench")

PROXIES = ("heldout", "learning_events")
SCORES_VERSION = "1"  # bump when a score's definition or its bank's training changes
STAGE = "memorization"  # the cache stage its entries live under


@dataclass
class ScoreSource:
    """What a forget spec needs to score examples: the run's plan and context (cache, device)."""

    plan: "Plan"
    ctx: RunContext

    def arrays(self, data: DataBundle, proxy: str, k_models: int) -> Dict[str, np.ndarray]:
        """The proxy's per-example arrays (``score`` [N] among them), from the cache or built."""
        if proxy == "heldout":
            return heldout_arrays(self.plan, data, self.ctx, k_models)
        if proxy == "learning_events":
            return learning_event_arrays(self.plan, data, self.ctx)
        raise ValueError(f"unknown memorization proxy {proxy!r}; one of {PROXIES}")


# ----------------------------------------------------------------------------- heldout

def heldout_material(p: "Plan", data: DataBundle, k_models: int) -> Dict:
    """Cache-key material of the heldout bank: data, model, recipe, K (no run seed)."""
    from unlearnbench.cache import training_material
    from unlearnbench.data.bundle import LOCATION_KEYS

    dataset = {k: v for k, v in p.dataset.items() if k not in LOCATION_KEYS}
    m = training_material(dataset, data.fingerprint(), p.model, p.recipe.cache_material(), seed=0)
    m.update(proxy="heldout", k_models=int(k_models), scores_version=SCORES_VERSION)
    return m


def paired_halves(n: int, k_models: int, generator: torch.Generator) -> Tensor:
    """[K, N] masks: K/2 random halves and their complements (each row in exactly K/2)."""
    from unlearnbench.engine.bank import random_halves

    if k_models < 2 or k_models % 2:
        raise ValueError(f"the heldout bank needs an even K >= 2, got {k_models}")
    halves = random_halves(n, k_models // 2, generator)
    return torch.stack([halves, ~halves], 1).reshape(k_models, n)


def heldout_arrays(p: "Plan", data: DataBundle, ctx: RunContext, k_models: int) -> Dict[str, np.ndarray]:
    """Feldman's heldout score and the bank's per-model statistics (cached).

    Returns arrays over the training split: ``score``, ``in_acc``, ``out_acc`` [N];
    ``in_mask``, ``correct`` [K, N] bool; ``margin`` [K, N] (true-class logit minus the
    largest other logit); ``labels`` [N].
    """
    def build():
        return _train_heldout_bank(p, data, ctx, k_models)

    state, meta, hit = ctx.cache.get_or_build(STAGE, heldout_material(p, data, k_models),
                                              torch.device("cpu"), build)
    log.info("memorization (heldout, K=%d): %s (key %s, bank trained in %.1fs)", k_models,
             "cache hit" if hit else "computed", meta["key"], meta["train_s"])
    return _heldout_summary({k: v.numpy() for k, v in state.items()})


def _train_heldout_bank(p: "Plan", data: DataBundle, ctx: RunContext, k_models: int):
    import time

    from unlearnbench.engine.bank import can_vmap, train_bank

    masks = paired_halves(len(data.train), k_models, torch.Generator().manual_seed(
        stream_seed(0, "memorization_halves")))
    seeds = [stream_seed(k, "memorization_model") % 2**31 for k in range(k_models)]
    if not can_vmap(p.new_model(data), p.recipe):
        log.info("memorization bank: model or optimizer cannot share a vmapped step; "
                 "training its %d models one after another", k_models)
    start = time.perf_counter()
    states = train_bank(lambda: p.new_model(data), data.train, masks, p.recipe, ctx, seeds=seeds,
                        desc=f"memorization bank (K={k_models})")
    ctx.sync()
    seconds = time.perf_counter() - start
    correct, margin = _bank_outputs(p, data, ctx, states)
    arrays = {"in_mask": masks, "correct": correct, "margin": margin, "labels": data.train.y.cpu()}
    return arrays, {"train_s": seconds, "trained_by": "bank", "k_models": k_models, "seeds": seeds}


def _bank_outputs(p: "Plan", data: DataBundle, ctx: RunContext, states: List[Dict[str, Tensor]]):
    """[K, N] correctness and margins of each bank model on the whole training split."""
    model = p.new_model(data).to(ctx.device)
    y = data.train.y
    correct, margin = [], []
    for state in states:
        model.load_state_dict(state)
        logits = predict(model, data.train.x, ctx)
        correct.append((logits.argmax(1) == y).cpu())
        margin.append(true_class_margin(logits, y).cpu())
    return torch.stack(correct), torch.stack(margin)


def true_class_margin(logits: Tensor, y: Tensor) -> Tensor:
    """Logit of the true class minus the largest other logit (> 0 iff correct, ties aside)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return true - other


def _heldout_summary(a: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    inside, correct = a["in_mask"].astype(bool), a["correct"].astype(bool)
    in_acc = (correct & inside).sum(0) / inside.sum(0)
    out_acc = (correct & ~inside).sum(0) / (~inside).sum(0)
    return {**a, "in_acc": in_acc, "out_acc": out_acc, "score": in_acc - out_acc}


# ----------------------------------------------------------------------------- learning events

def learning_event_arrays(p: "Plan", data: DataBundle, ctx: RunContext) -> Dict[str, np.ndarray]:
    """The original's learning events on its training split (cached with the original).

    Returns ``score`` [N] (1 - mean true-class probability over epochs), ``true_prob``
    [E, N], ``correct`` [E, N] bool, ``first_learned_epoch`` [N] (first epoch from which it
    stays correct; E if never), ``forgetting_events`` [N] (correct -> wrong transitions)
    and ``labels`` [N].
    """
    original = p.training_material(data, None, "original")
    material = {"proxy": "learning_events", "original": original, "scores_version": SCORES_VERSION}

    def build():
        return _record_learning_events(p, data, ctx, original)

    state, meta, hit = ctx.cache.get_or_build(STAGE, material, torch.device("cpu"), build)
    log.info("memorization (learning events): %s (key %s)", "cache hit" if hit else "recorded", meta["key"])
    return _learning_event_summary({k: v.numpy() for k, v in state.items()})


def _record_learning_events(p: "Plan", data: DataBundle, ctx: RunContext, original: Dict):
    """Trains the original as the pipeline would, recording every epoch; caches it too."""
    from unlearnbench.pipeline import train_reference

    probs: List[Tensor] = []
    correct: List[Tensor] = []
    y = data.train.y

    def record(model: nn.Module, epoch: int) -> None:
        logits = predict(model, data.train.x, ctx)
        probs.append(F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1).cpu())
        correct.append((logits.argmax(1) == y).cpu())

    state, meta = train_reference(p, data, data.train, ctx, "original", after_epoch=record)
    # The very original the run trains next: store it so the pipeline finds it (no-op if present).
    ctx.cache.get_or_build("original", original, ctx.device, lambda: (state, meta))
    arrays = {"true_prob": torch.stack(probs), "correct": torch.stack(correct), "labels": y.cpu()}
    return arrays, {"train_s": meta["train_s"], "trained_by": "fit", "epochs": len(probs)}


def _learning_event_summary(a: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    correct = a["correct"].astype(bool)
    # first epoch from which the example stays correct: after the last wrong epoch
    wrong_after = np.flip(np.cumsum(np.flip(~correct, 0), 0), 0) > 0  # [E, N]: wrong at e or later
    first_learned = wrong_after.sum(0).astype(np.int64)  # a prefix of True; E if wrong at the end
    forgetting = (correct[:-1] & ~correct[1:]).sum(0).astype(np.int64)
    score = 1.0 - a["true_prob"].astype(np.float64).mean(0)
    return {**a, "score": score, "first_learned_epoch": first_learned, "forgetting_events": forgetting}
