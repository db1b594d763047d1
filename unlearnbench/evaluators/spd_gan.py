"""SPD-GAN (Zuo et al., reconstructed): a generator that shifts D_f slightly, and its training.

Why a GAN at all: with i.i.d. data a model classifies D_f about as well whether or not it
trained on it, so forget accuracy hides forgetting. The generator moves every forget image
by at most ε (L∞, pixel scale) towards the decision boundary of a *reference model that
never saw D_f*, while a discriminator keeps the moved images indistinguishable from real
ones. On such a "slightly perturbed distribution" D_f' a model that memorised D_f keeps
classifying correctly where one that only generalises starts to fail.

Reconstructed objective (the paper gives no formula; docs/spd.md):
    D: minimise BCE(D(x_real), 1) + BCE(D(x'), 0)          x_real from D_f ∪ D_r
    G: minimise adv_weight · BCE(D(x'), 1)
              + shift_weight · mean(relu(log p_ref(y | x') − log shift_target_conf))
The second term lowers the reference model's true-label probability down to
``shift_target_conf`` and then stops, so x' sits near a generic boundary instead of becoming
an adversarial example. The reference ("proxy") is a small MLP trained here on D_r only, so
the generator does not depend on the original model: it can be built before the original
is trained, which ``spd_mode: inject`` needs.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import RunContext, fit, predict
from unlearnbench.engine.context import stream_seed

# |x' − x| ≤ GUARD·ε before rounding, so float32 rounding of the normalise/denormalise round
# trip (~1e-7) can never push the measured L∞ above ε.
GUARD = 1.0 - 1e-4


@dataclass(frozen=True)
class GanConfig:
    """The GAN's keys (``eval.params.spd``); all of them enter the generator's cache key."""

    epsilon: float = 8 / 255
    steps: int = 200
    lr: float = 2e-3
    gen_width: int = 16
    disc_width: int = 16
    z_dim: int = 4
    batch_size: int = 64
    max_examples: int = 2000
    adv_weight: float = 1.0
    shift_weight: float = 1.0
    shift_target_conf: float = 0.5
    proxy_epochs: int = 3
    proxy_width: int = 256
    seed_offset: int = 0

    def material(self) -> Dict[str, Any]:
        return asdict(self)


class PixelMap:
    """Maps normalised tensors to [0, 1] pixels and back with the dataset's channel stats."""

    def __init__(self, mean: Tensor, std: Tensor, device: torch.device, low: float = 0.0,
                 high: float = 1.0):
        self.mean = mean.float().view(1, -1, 1, 1).to(device)
        self.std = std.float().view(1, -1, 1, 1).to(device)
        self.low, self.high = low, high

    def to_pixels(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean

    def normalise(self, p: Tensor) -> Tensor:
        return (p - self.mean) / self.std


class Generator(nn.Module):
    """G(x, z, y): three 3x3 convolutions over the image, the noise and the one-hot label,
    plus a learned per-class map over pixel positions.

    Convolutions are translation-equivariant, so alone they cannot place a pattern at fixed
    positions; the per-class map can (a class-conditional "universal" shift), which is the
    direction a classifier of flattened pixels is most sensitive to.
    """

    def __init__(self, input_shape: Tuple[int, ...], num_classes: int, z_dim: int, width: int):
        super().__init__()
        channels = input_shape[0]
        self.num_classes = num_classes
        self.net = nn.Sequential(
            nn.Conv2d(channels + z_dim + num_classes, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1))
        self.class_map = nn.Parameter(torch.zeros(num_classes, *input_shape))

    def forward(self, x: Tensor, z: Tensor, y: Tensor) -> Tensor:
        n, _, h, w = x.shape
        label = F.one_hot(y, self.num_classes).to(x.dtype)
        cond = torch.cat([z.to(x.dtype), label], 1)[:, :, None, None].expand(n, -1, h, w)
        return self.net(torch.cat([x, cond], 1)) + self.class_map[y]


class Discriminator(nn.Module):
    """Real vs perturbed: two strided convolutions, mean- and max-pooled (max catches local artefacts)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4 * width, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)
        return self.head(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)).squeeze(1)


def proxy_model(input_shape: Tuple[int, ...], num_classes: int, width: int) -> nn.Module:
    """The reference classifier that never sees D_f (a shadow model, not the oracle)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes))


def perturb(gen: Generator, x: Tensor, z: Tensor, y: Tensor, pix: PixelMap, epsilon: float) -> Tensor:
    """x' = clip(x + ε·tanh(G(x, z, y))) in pixel scale, returned normalised like ``x``."""
    p = pix.to_pixels(x)
    delta = (epsilon * GUARD) * torch.tanh(gen(x, z, y))
    return pix.normalise((p + delta).clamp(pix.low, pix.high))


def _take(split: Split, n: int, gen: torch.Generator) -> Split:
    idx = torch.randperm(len(split), generator=gen)[:n]
    return split.subset(idx)


def _split_half(split: Split, held_share: float) -> Tuple[Split, Split]:
    """First part for training, last ``held_share`` held out (the split is already shuffled)."""
    n_held = max(1, int(round(len(split) * held_share))) if len(split) > 1 else 0
    cut = len(split) - n_held
    return Split(split.x[:cut], split.y[:cut]), Split(split.x[cut:], split.y[cut:])


def train_proxy(retain: Split, cfg: GanConfig, ctx: RunContext, num_classes: int,
                stream: str) -> nn.Module:
    """A small MLP fitted on D_r with Adam through the engine's ``fit`` loop."""
    model = proxy_model(tuple(retain.x.shape[1:]), num_classes, cfg.proxy_width).to(ctx.device)
    recipe = replace(ctx.recipe, epochs=cfg.proxy_epochs, batch_size=cfg.batch_size, optimizer="adam",
                     lr=1e-3, weight_decay=0.0, schedule="constant", warmup_epochs=0.0,
                     label_smoothing=0.0, augment="none", lr_scaling="none")
    fit(model, retain, recipe, ctx, desc="spd proxy", stream=stream)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def gan_steps(cfg: GanConfig, ctx: RunContext) -> int:
    """``steps``, capped by the recipe's ``max_batches`` (debug=smoke caps every loop)."""
    cap = ctx.recipe.max_batches
    return cfg.steps if cap is None else min(cfg.steps, int(cap))


def train_gan(forget: Split, retain: Split, pix: PixelMap, cfg: GanConfig, ctx: RunContext,
              num_classes: int) -> Tuple[Dict[str, Tensor], Dict[str, float]]:
    """Trains G (and D, the proxy) on at most ``max_examples`` forget / retain examples.

    Returns the generator's state dict and build statistics: seconds, the held-out
    discriminator balanced accuracy (real D_r vs perturbed D_f, 0.5 = indistinguishable)
    and the proxy's accuracy on clean vs perturbed held-out forget examples.
    """
    start = time.perf_counter()
    base = f"spd_gan{cfg.seed_offset}"  # seed_offset names an independent generator
    gen_rng = ctx.generator(f"{base}/samples")
    f_all = _take(forget, cfg.max_examples, gen_rng)
    r_all = _take(retain, cfg.max_examples, gen_rng)
    f_train, f_held = _split_half(f_all, 0.2)
    r_train, r_held = _split_half(r_all, 0.2)
    proxy_pool = _take(retain, max(cfg.max_examples, 4 * cfg.batch_size) * 5, gen_rng)
    shape = tuple(forget.x.shape[1:])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(ctx.seed, f"{base}/init"))
        proxy = train_proxy(proxy_pool, cfg, ctx, num_classes, stream=f"{base}/proxy_batches")
        G = Generator(shape, num_classes, cfg.z_dim, cfg.gen_width).to(ctx.device)
        D = Discriminator(shape[0], cfg.disc_width).to(ctx.device)
    real = Split(torch.cat([f_train.x, r_train.x]), torch.cat([f_train.y, r_train.y]))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    log_tau = math.log(cfg.shift_target_conf)
    bs = cfg.batch_size
    ones = torch.ones(bs, device=ctx.device)
    zeros = torch.zeros(bs, device=ctx.device)
    dev = ctx.device
    for _ in ctx.progress(range(gan_steps(cfg, ctx)), desc="spd gan"):
        fi = torch.randint(len(f_train), (bs,), generator=gen_rng).to(dev)
        ri = torch.randint(len(real), (bs,), generator=gen_rng).to(dev)
        z = torch.randn(bs, cfg.z_dim, generator=gen_rng).to(dev)
        x, y = f_train.x[fi], f_train.y[fi]
        fake = perturb(G, x, z, y, pix, cfg.epsilon)
        d_loss = (F.binary_cross_entropy_with_logits(D(real.x[ri]), ones)
                  + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        adv = F.binary_cross_entropy_with_logits(D(fake), ones)
        logp = proxy(fake).log_softmax(1).gather(1, y.view(-1, 1)).squeeze(1)
        shift = F.relu(logp - log_tau).mean()
        g_loss = cfg.adv_weight * adv + cfg.shift_weight * shift
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    G.eval()
    D.eval()
    with torch.no_grad():
        z_held = torch.randn(len(f_held), cfg.z_dim, generator=gen_rng).to(dev)
        fake_held = perturb(G, f_held.x, z_held, f_held.y, pix, cfg.epsilon)
        real_hit = (D(r_held.x) > 0).float().mean()
        fake_hit = (D(fake_held) <= 0).float().mean()
        proxy_clean = predict(proxy, f_held.x, ctx).argmax(1).eq(f_held.y).float().mean()
        proxy_shift = predict(proxy, fake_held, ctx).argmax(1).eq(f_held.y).float().mean()
    ctx.sync()
    stats = {"train_s": time.perf_counter() - start,
             "disc_acc": float(0.5 * (real_hit + fake_hit)),
             "proxy_acc_clean": float(proxy_clean), "proxy_acc_perturbed": float(proxy_shift),
             "gan_examples": len(f_train)}
    return G.state_dict(), stats


def load_generator(state: Dict[str, Tensor], input_shape: Tuple[int, ...], num_classes: int,
                   cfg: GanConfig, device: torch.device) -> Generator:
    G = Generator(input_shape, num_classes, cfg.z_dim, cfg.gen_width).to(device)
    G.load_state_dict(state)
    return G.eval()


@torch.no_grad()
def perturb_all(G: Generator, split: Split, pix: PixelMap, cfg: GanConfig, ctx: RunContext,
                chunk: int = 2048) -> Tensor:
    """D_f' for every row of ``split``, with one fixed noise draw per example (deterministic)."""
    z = torch.randn(len(split), cfg.z_dim, generator=ctx.generator(f"spd_gan{cfg.seed_offset}/perturb_noise"))
    z = z.to(split.x.device)
    out = [perturb(G, split.x[i:i + chunk], z[i:i + chunk], split.y[i:i + chunk], pix, cfg.epsilon)
           for i in range(0, len(split), chunk)]
    return torch.cat(out) if out else split.x.clone()


def linf_pixels(x: Tensor, x_new: Tensor, pix: PixelMap) -> float:
    """max |x' − x| in [0, 1] pixel scale."""
    if x.numel() == 0:
        return 0.0
    return float((pix.to_pixels(x_new) - pix.to_pixels(x)).abs().max().detach())
