"""``spd``: Zuo et al.'s SPD-GAN unlearning degree (reconstructed; see docs/spd.md).

A(θ) is the accuracy on D_f', a slightly perturbed copy of the forget set made by the
generator in ``spd_gan``. UD(θ) = A(θ_o) − A(θ): how much of the original's advantage on
D_f' the model has given up. The retrained oracle's UD, A(θ_o) − A(θ_r), is the target
(retrain row), and ``spd_unlearning_degree_norm`` = UD / target (original 0, oracle 1).

The generator is trained once per run, before the first role is evaluated (or, with
``spd_mode: inject``, before the original is trained: D_f is then replaced by D_f' in the
training data through the ``prepare_data`` hook), and cached by content key.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from unlearnbench.data.bundle import DataBundle, Split
from unlearnbench.engine import RunContext, predict
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators.base import EvalContext, Evaluator, Metric, Scored
from unlearnbench.evaluators.spd_gan import (GanConfig, PixelMap, gan_steps, linf_pixels,
                                             load_generator, perturb_all, train_gan)
from unlearnbench.registry import EVALUATORS

log = logging.getLogger(__name__)

# Bump when the generator's training changes, so cached generators are not reused.
SPD_VERSION = "2"
MODES = ("evaluate", "inject")


def unlearning_degree(acc_original: float, acc: float, acc_oracle: float,
                      min_target: float) -> Tuple[float, float]:
    """(UD, UD / target) with UD = A(θ_o) − A(θ), target = A(θ_o) − A(θ_r).

    The ratio is NaN when |target| < ``min_target``: the oracle is not separated from the
    original on D_f', so no ratio would mean anything.
    """
    ud = acc_original - acc
    target = acc_original - acc_oracle
    if not abs(target) >= max(min_target, 1e-12):
        return ud, float("nan")
    return ud, ud / target


@dataclass
class Perturbed:
    """D_f and D_f' for one run, and the generator's build statistics."""

    clean: Split
    shifted: Split
    linf: float
    stats: Dict[str, float]
    cache_hit: bool


@EVALUATORS.register("spd")
class SpdUnlearningDegree(Evaluator):
    reusable_reference = True
    metrics = {
        "spd_forget_acc": Metric(None, "accuracy on D_f' (SPD-GAN-perturbed forget set, fraction); "
                                       "closer to the oracle is better"),
        "spd_forget_conf": Metric(None, "mean softmax probability of the true label on D_f'; "
                                        "closer to the oracle is better"),
        "spd_unlearning_degree": Metric(None, "A(θ_o) − A(θ) on D_f' (fraction); the retrain row "
                                              "holds the target A(θ_o) − A(θ_r), closer is better"),
        "spd_unlearning_degree_norm": Metric(None, "UD / (A(θ_o) − A(θ_r)): original 0, oracle 1; "
                                                   "NaN when the target is below min_target"),
        "spd_linf": Metric(False, "max |x' − x| over D_f in [0, 1] pixel scale; ≤ epsilon by construction"),
        "spd_disc_acc": Metric(None, "held-out balanced accuracy of the GAN's discriminator, real D_r vs "
                                     "D_f'; 0.5 = perturbations indistinguishable"),
        "spd_gan_s": Metric(False, "wall seconds to train the SPD generator (precompute; cached)"),
    }

    def __init__(self, spd_mode: str = "evaluate", epsilon: float = 8 / 255, steps: int = 200,
                 lr: float = 2e-3, gen_width: int = 16, disc_width: int = 16, z_dim: int = 4,
                 batch_size: int = 64, max_examples: int = 2000, adv_weight: float = 1.0,
                 shift_weight: float = 1.0, shift_target_conf: float = 0.5, proxy_epochs: int = 3,
                 proxy_width: int = 256, seed_offset: int = 0, min_target: float = 0.005):
        key = "eval.params.spd."
        if spd_mode not in MODES:
            raise ConfigError(key + "spd_mode", f"'{spd_mode}' is not one of {'|'.join(MODES)}")
        if not 0 < float(epsilon) <= 1:
            raise ConfigError(key + "epsilon", f"must be in (0, 1] (pixel scale), got {epsilon}")
        for name, value in (("steps", steps), ("gen_width", gen_width), ("disc_width", disc_width),
                            ("batch_size", batch_size), ("max_examples", max_examples),
                            ("proxy_width", proxy_width), ("lr", lr)):
            if value is None or value <= 0:
                raise ConfigError(key + name, f"must be positive, got {value}")
        for name, value in (("z_dim", z_dim), ("proxy_epochs", proxy_epochs), ("adv_weight", adv_weight),
                            ("shift_weight", shift_weight), ("min_target", min_target),
                            ("seed_offset", seed_offset)):
            if value is None or value < 0:
                raise ConfigError(key + name, f"must be ≥ 0, got {value}")
        if not 0 < shift_target_conf < 1:
            raise ConfigError(key + "shift_target_conf", f"must be in (0, 1), got {shift_target_conf}")
        if shift_weight > 0 and proxy_epochs == 0:
            raise ConfigError(key + "proxy_epochs", "the shift objective needs a trained proxy (> 0)")
        self.mode, self.min_target = spd_mode, float(min_target)
        self.gan = GanConfig(epsilon=float(epsilon), steps=int(steps), lr=float(lr),
                             gen_width=int(gen_width), disc_width=int(disc_width), z_dim=int(z_dim),
                             batch_size=int(batch_size), max_examples=int(max_examples),
                             adv_weight=float(adv_weight), shift_weight=float(shift_weight),
                             shift_target_conf=float(shift_target_conf), proxy_epochs=int(proxy_epochs),
                             proxy_width=int(proxy_width), seed_offset=int(seed_offset))
        self._perturbed: Optional[Perturbed] = None
        self._scores: Dict[str, Tuple[float, float]] = {}
        self._warned = False

    # -- generator: built once per run ------------------------------------------------------
    def _build(self, data: DataBundle, forget_idx: Tensor, ctx: RunContext) -> Perturbed:
        dev = data.train.y.device
        fidx = forget_idx.to(dev)
        keep = torch.ones(len(data.train), dtype=torch.bool, device=dev)
        keep[fidx] = False
        clean, retain = data.train.subset(fidx), Split(data.train.x[keep], data.train.y[keep])
        # Clip to [0, 1] pixels, or to the data's own range when it is wider (tabular npz data).
        pix = PixelMap(data.pixel_mean, data.pixel_std, dev)
        pixels = pix.to_pixels(data.train.x)
        lo, hi = min(0.0, float(pixels.amin())), max(1.0, float(pixels.amax()))
        pix.low, pix.high = lo, hi
        del pixels
        material = {"spd_version": SPD_VERSION, "data_fingerprint": data.fingerprint(),
                    "forget_sha": hashlib.sha256(forget_idx.cpu().numpy().tobytes()).hexdigest()[:16],
                    "seed": int(ctx.seed), "gan": self.gan.material(), "pixel_range": [lo, hi]}
        if gan_steps(self.gan, ctx) != self.gan.steps:  # capped by train.max_batches
            material["steps_run"] = gan_steps(self.gan, ctx)

        def build():
            state, stats = train_gan(clean, retain, pix, self.gan, ctx, data.num_classes)
            return state, stats

        if ctx.cache is not None:
            state, meta, hit = ctx.cache.get_or_build("spd_generator", material, ctx.device, build)
        else:
            (state, meta), hit = build(), False
        G = load_generator(state, tuple(clean.x.shape[1:]), data.num_classes, self.gan, ctx.device)
        shifted = Split(perturb_all(G, clean, pix, self.gan, ctx), clean.y)
        stats = {k: float(meta[k]) for k in ("train_s", "disc_acc", "proxy_acc_clean", "proxy_acc_perturbed")}
        log.info("SPD generator: %s (trained in %.1fs), disc acc %.3f, proxy acc clean %.3f -> perturbed %.3f",
                 "cache hit" if hit else "trained", stats["train_s"], stats["disc_acc"],
                 stats["proxy_acc_clean"], stats["proxy_acc_perturbed"])
        return Perturbed(clean, shifted, linf_pixels(clean.x, shifted.x, pix), stats, hit)

    def _ensure(self, ctx: EvalContext) -> Perturbed:
        if self._perturbed is None:
            if ctx.data is None or ctx.forget is None:
                raise RuntimeError("the spd evaluator needs EvalContext.data and .forget")
            self._perturbed = self._build(ctx.data, ctx.forget.forget_idx, ctx.run)
        return self._perturbed

    def prepare_data(self, data: DataBundle, forget, ctx: RunContext) -> DataBundle:
        """``spd_mode: inject``: the original trains on D_f' in place of D_f (a learnable canary)."""
        if self.mode != "inject":
            return data
        self._perturbed = self._build(data, forget.forget_idx, ctx)
        x = data.train.x.clone()
        x[forget.forget_idx.to(x.device)] = self._perturbed.shifted.x
        return replace(data, train=Split(x, data.train.y))

    # -- scoring ----------------------------------------------------------------------------
    def _score(self, model: Scored, shifted: Split) -> Tuple[float, float]:
        if model.role not in self._scores:
            logits = predict(model.model, shifted.x, model.ctx)
            if len(shifted) == 0:
                self._scores[model.role] = (float("nan"), float("nan"))
            else:
                acc = float(logits.argmax(1).eq(shifted.y).float().mean())
                conf = float(logits.softmax(1).gather(1, shifted.y.view(-1, 1)).mean())
                self._scores[model.role] = (acc, conf)
        return self._scores[model.role]

    def evaluate(self, model: Scored, ctx: EvalContext) -> Dict[str, float]:
        pert = self._ensure(ctx)
        acc, conf = self._score(model, pert.shifted)
        acc_o = self._score(ctx.original, pert.shifted)[0]
        acc_r = self._score(ctx.oracle, pert.shifted)[0]
        ud, norm = unlearning_degree(acc_o, acc, acc_r, self.min_target)
        if math.isnan(norm) and not self._warned:
            self._warned = True
            log.warning("spd: A(θ_o) − A(θ_r) = %.4f on D_f' is below min_target=%.4f; "
                        "spd_unlearning_degree_norm is NaN (try spd_mode=inject or a larger epsilon)",
                        acc_o - acc_r, self.min_target)
        return {"spd_forget_acc": acc, "spd_forget_conf": conf, "spd_unlearning_degree": ud,
                "spd_unlearning_degree_norm": norm, "spd_linf": pert.linf,
                "spd_disc_acc": pert.stats["disc_acc"], "spd_gan_s": pert.stats["train_s"]}
