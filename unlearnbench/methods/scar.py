"""``scar``: Selective-distillation for Class and Architecture-agnostic unleaRning
(Bonato, Cotogni, Sabetta, ECCV 2024). [code]

Official code: github.com/jbonato1/SCAR, ``src/Unlearning_methods.py`` (class ``SCAR``),
``src/dsets.py`` (``get_surrogate``), ``src/opts.py`` (defaults), commit
280ceaebd69e81f1619cf627950bb7b95e0104aa.

No gradient step ever sees D_r. Per step (Adam):

* forget term, λ1 × mean Mahalanobis distance between each D_f example's penultimate
  features and the *closest other* class distribution (chosen once, on θ_o). Features go
  through a Tukey transform x^δ and L2 normalisation; each class distribution is the mean
  and the inverse (pinv) of a twice-shrunk (γ1, γ2), correlation-normalised covariance;
* retain term, λ2 × KL(softmax(θ_o(s)/T) ‖ softmax(θ(s))) on surrogate out-of-distribution
  images s labelled by θ_o — here the official ``subset_gaussian_noise`` surrogate, N(0, 1)
  inputs, since no natural-image surrogate ships with unlearnbench.

For each D_f batch, ``surrogate_steps`` steps run on fresh surrogate batches (official
``num_retain_samp`` = 5, i.e. 6 steps). After every step the D_f accuracy is measured; from
the third epoch on, training stops once it falls below the target.

Two scenarios, told apart by the data: *class removal* when D_f's classes are absent from
D_r (CR: removed classes get no distribution, surrogate images θ_o assigns to them are
dropped and their teacher logits set to the batch minimum, target accuracy 0.01), else
*homogeneous removal* (HR: surrogate sampled class-balanced by θ_o's labels, each class's
distances weighted by its current D_f accuracy, zeroed below ``forget_threshold``; target =
θ_o's accuracy minus ``stop_margin``).

Where we differ, as config keys or by necessity: the official HR target is θ_o's *test*
accuracy minus 0.015; methods never see the test split, so the validation split is used.
The class distributions come from D_r's features in the official code (``class_stats:
retain``, no gradient step on them); ``class_stats: surrogate`` uses the surrogate images
labelled by θ_o instead, so nothing of D_r is read at all. Features are clamped at 0 before
x^δ (the official code assumes post-ReLU features). The official KL adds 1e-4 to both
log-probabilities, which changes nothing measurable, and is left out.
"""

from __future__ import annotations

import copy
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.engine import predict
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.methods.common import capped, check_nonnegative, check_positive
from unlearnbench.models import classifier_of
from unlearnbench.registry import METHODS

CLASS_STATS = ("retain", "surrogate")
CR_TARGET = 0.01  # official target accuracy on D_f for class removal


def features(model: nn.Module, x: Tensor) -> Tensor:
    """Penultimate features: the input of the classifier (``fc``), captured by a hook."""
    captured: List[Tensor] = []
    handle = classifier_of(model).register_forward_hook(lambda m, inp, out: captured.append(inp[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return captured[0].flatten(1)


def tukey(x: Tensor, delta: float) -> Tensor:
    return x.clamp_min(0).pow(delta)


def shrink(cov: Tensor, gamma1: float, gamma2: float) -> Tensor:
    """cov + γ1·I·mean(diag) + γ2·(1 − I)·mean(non-zero off-diagonal) (official cov_mat_shrinkage)."""
    eye = torch.eye(cov.shape[0], device=cov.device, dtype=cov.dtype)
    off = cov * (1 - eye)
    nonzero = off != 0
    v2 = off.sum() / nonzero.sum().clamp_min(1)
    return cov + gamma1 * eye * cov.diagonal().mean() + gamma2 * (1 - eye) * v2


def class_distributions(feats: Tensor, labels: Tensor, classes: List[int], delta: float, gamma1: float,
                        gamma2: float) -> Tuple[Tensor, Tensor]:
    """Per class: mean of Tukey features and the pinv of the shrunk correlation matrix."""
    means, inverses = [], []
    for c in classes:
        s = tukey(feats[labels == c], delta).double()
        cov = shrink(shrink(torch.cov(s.T), gamma1, gamma2), gamma1, gamma2)
        sigma = cov.diagonal().sqrt()
        inverses.append(torch.linalg.pinv(cov / torch.outer(sigma, sigma)).float())
        means.append(s.mean(0).float())
    return torch.stack(means), torch.stack(inverses)


def mahalanobis(feats: Tensor, means: Tensor, inverses: Tensor, delta: float) -> Tensor:
    """[B, C] distances d = (u − μ_c)ᵀ S_c⁻¹ (u − μ_c), u and μ L2-normalised (official)."""
    diff = F.normalize(tukey(feats, delta), dim=-1)[:, None, :] - F.normalize(means, dim=-1)[None]
    return torch.einsum("bcd,cde,bce->bc", diff, inverses, diff)


def closest_other(dists: Tensor, labels: Tensor, classes: Tensor) -> Tensor:
    """Column index of the nearest distribution whose class is not the example's own."""
    order = dists.argsort(dim=1)
    first = order[:, 0]
    return torch.where(classes[first] == labels, order[:, 1], first)


def distill(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """KL(softmax(teacher / T) ‖ softmax(student)), batch mean; T on the teacher only (official)."""
    return F.kl_div(F.log_softmax(student_logits.float(), 1), F.log_softmax(teacher_logits.float() / temperature, 1),
                    reduction="batchmean", log_target=True)


@METHODS.register("scar")
class Scar(Method):
    version = "1"

    def __init__(self, epochs: int = 30, lr: float = 5e-4, weight_decay: float = 0.0, batch_size: int = 1024,
                 lambda_1: float = 1.0, lambda_2: float = 5.0, temperature: float = 1.0, delta: float = 0.5,
                 gamma1: float = 3.0, gamma2: float = 3.0, surrogate_size: int = 10000,
                 surrogate_steps: int = 6, forget_threshold: float = 0.8, stop_margin: float = 0.015,
                 class_stats: str = "retain"):
        for key, value in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size), ("temperature", temperature),
                           ("delta", delta), ("surrogate_size", surrogate_size), ("surrogate_steps", surrogate_steps)):
            check_positive(value, f"method.{key}")
        for key, value in (("weight_decay", weight_decay), ("lambda_1", lambda_1), ("lambda_2", lambda_2),
                           ("gamma1", gamma1), ("gamma2", gamma2), ("forget_threshold", forget_threshold),
                           ("stop_margin", stop_margin)):
            check_nonnegative(value, f"method.{key}")
        if class_stats not in CLASS_STATS:
            raise ConfigError("method.class_stats", f"'{class_stats}' is not one of {list(CLASS_STATS)}")
        self.epochs, self.lr, self.weight_decay, self.batch_size = epochs, lr, weight_decay, batch_size
        self.lambda_1, self.lambda_2, self.temperature = lambda_1, lambda_2, temperature
        self.delta, self.gamma1, self.gamma2 = delta, gamma1, gamma2
        self.surrogate_size, self.surrogate_steps = surrogate_size, surrogate_steps
        self.forget_threshold, self.stop_margin, self.class_stats = forget_threshold, stop_margin, class_stats

    def unlearn(self, model, data, ctx):
        original = copy.deepcopy(model).eval()
        removed = sorted(set(data.forget.y.tolist()) - set(data.retain.y.tolist()))
        with ctx.timer("precompute"):
            surrogate = torch.randn(self.surrogate_size, *data.forget.x.shape[1:],
                                    generator=ctx.generator("scar_surrogate")).to(data.forget.x.device)
            teacher = predict(original, surrogate, ctx)
            classes, means, inverses = self.distributions(original, data, surrogate, teacher, removed, ctx)
            with torch.no_grad():
                dists = mahalanobis(self.forget_features(original, data.forget.x, ctx), means, inverses, self.delta)
            target_class = closest_other(dists, data.forget.y, classes)
        target_acc = CR_TARGET if removed else predict(original, data.val.x, ctx).argmax(1).eq(
            data.val.y).float().mean().item() - self.stop_margin
        run = self.train(model, data, surrogate, teacher, removed, (means, inverses, target_class), target_acc, ctx)
        return Unlearned(model.eval(), {**run, "class_removal": float(bool(removed))})

    def forget_features(self, model, x, ctx) -> Tensor:
        return torch.cat([features(model, x[i:i + ctx.recipe.eval_batch_size])
                          for i in range(0, len(x), ctx.recipe.eval_batch_size)])

    def distributions(self, original, data, surrogate, teacher, removed, ctx):
        if self.class_stats == "retain":
            x, y = data.retain.x, data.retain.y
        else:
            x, y = surrogate, teacher.argmax(1)
        with torch.no_grad():
            feats = self.forget_features(original, x, ctx)
        present = set(y.tolist())
        classes = [c for c in range(data.num_classes) if c not in removed and c in present]
        means, inverses = class_distributions(feats, y, classes, self.delta, self.gamma1, self.gamma2)
        return torch.tensor(classes, device=y.device), means, inverses

    def surrogate_order(self, teacher: Tensor, removed: List[int], gen: torch.Generator) -> Tensor:
        """Indices of one pass of surrogate batches: class-balanced with replacement (HR) or a shuffle (CR)."""
        n = self.batch_size * self.surrogate_steps
        if removed:
            return torch.randperm(len(teacher), generator=gen)[:n]
        labels = teacher.argmax(1).cpu()
        counts = torch.bincount(labels, minlength=teacher.shape[1])[labels].float()
        counts[counts < 3] = 5  # official: "correct for undersampled output"
        return torch.multinomial(1.0 / counts, n, replacement=True, generator=gen)

    def train(self, model, data, surrogate, teacher, removed, forget_target, target_acc, ctx) -> Dict[str, float]:
        means, inverses, target_class = forget_target
        opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen, sgen = ctx.generator("forget_batches"), ctx.generator("surrogate_batches")
        weights, steps = None, 0
        removed_t = torch.tensor(removed, dtype=torch.long, device=teacher.device)
        # Under debug=smoke's max_batches cap the epochs and steps per D_f batch are capped too
        # (the stop rule rarely fires on tiny data, and 30 × 6 full-size steps are not a smoke test).
        epochs, per_batch = capped(self.epochs, ctx), capped(self.surrogate_steps, ctx)
        for epoch in ctx.progress(range(epochs), desc="scar"):
            idx_all = torch.randperm(len(data.forget), generator=gen).to(data.forget.y.device)
            for b in range(capped(math.ceil(len(idx_all) / self.batch_size), ctx)):
                fidx = idx_all[b * self.batch_size:(b + 1) * self.batch_size]
                order = self.surrogate_order(teacher, removed, sgen).to(surrogate.device)
                for s in range(per_batch):
                    sidx = order[s * self.batch_size:(s + 1) * self.batch_size]
                    loss = self.loss(model, data.forget.x[fidx], data.forget.y[fidx], target_class[fidx],
                                     means, inverses, weights, surrogate[sidx], teacher[sidx], removed_t)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    steps += 1
                    acc, weights = self.check(model, data.forget, removed, data.num_classes, ctx)
                    if acc < target_acc and epoch > 1:
                        return {"epochs": float(epoch + 1), "steps": float(steps), "stopped_early": 1.0}
        return {"epochs": float(epochs), "steps": float(steps), "stopped_early": 0.0}

    def loss(self, model, x_f, y_f, target_class, means, inverses, weights, x_s, teacher_s, removed) -> Tensor:
        model.train()
        d = mahalanobis(features(model, x_f), means, inverses, self.delta)
        d = d.gather(1, target_class.view(-1, 1)).squeeze(1)
        if weights is not None:  # HR: per-class weight from the last accuracy check
            d = d * weights[y_f]
        student = model(x_s)
        if removed.numel():  # CR: drop surrogate images θ_o assigns to a removed class
            keep = ~torch.isin(teacher_s.argmax(1), removed)
            student, teacher_s = student[keep], teacher_s[keep].clone()
            teacher_s[:, removed] = teacher_s.min()
        retain = distill(student, teacher_s, self.temperature) if len(student) else student.sum()
        return self.lambda_1 * d.mean() + self.lambda_2 * retain

    @torch.no_grad()
    def check(self, model, forget, removed, num_classes: int, ctx) -> Tuple[float, Optional[Tensor]]:
        """D_f accuracy and (HR) the per-class weights: class accuracy, 0 below the threshold."""
        correct = predict(model, forget.x, ctx).argmax(1).eq(forget.y).float()
        if removed:
            return correct.mean().item(), None
        per_class = torch.zeros(num_classes, device=correct.device).index_add_(0, forget.y, correct)
        per_class = per_class / torch.bincount(forget.y, minlength=num_classes).clamp_min(1)
        return correct.mean().item(), torch.where(per_class < self.forget_threshold, 0.0, per_class)
