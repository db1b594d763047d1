"""Per-example audit statistics over model populations: U-LiRA, the ε-score and KLOM.

Every function takes arrays shaped [models, examples] (one example's statistic under each
model of a population) and is vectorised over examples and models; loops run only over
cross-fitting folds and decision-rule families. The statistic throughout is the margin
z_y − logsumexp_{j≠y} z_j of ``scores.npz``, which equals LiRA's logit-scaled confidence
log(p_y / (1 − p_y)) and KLOM's margin.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

# NeurIPS 2023 unlearning challenge constants (google-deepmind/unlearning_evaluation,
# metric.py at ffae0fff4c3e9523b22618c47df6c26e4eebe0df).
DELTA = 1e-5
EPSILON_CAP = 50.0
INTERVAL_BUFFER = 2.0  # the double-threshold rule's width tolerance around the peakier range
BUCKET = 0.5           # width of the ε buckets of the forget score

# KLOM constants (RoyRin/data-unlearning-bench, unlearning_bench/eval.py at
# eb261f9c652aa1daae62c7f23f4e56286edf745c: compute_binned_KL_div, kl_from_margins).
KLOM_BINS = 20
KLOM_EPS = 1e-5
KLOM_CLIP = 100.0


# ----------------------------------------------------------------------------- U-LiRA

def _gaussian_logpdf(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def _fit(x: np.ndarray, pooled: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Per-example means and variances of [models, examples]; ``pooled``: one variance,
    the mean over examples of the per-example variances (LiRA's fixed-variance variant)."""
    mean = x.mean(0)
    var = x.var(0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1])
    var = np.full_like(mean, var.mean()) if pooled else var
    return mean, np.maximum(var, 1e-12)


def _folds(n: int, folds: int) -> np.ndarray:
    return np.arange(n) % folds


def ulira_scores(a: np.ndarray, b: np.ndarray, folds: int, pooled: bool = True
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Likelihood-ratio scores log N(φ; A-fit) − log N(φ; B-fit) of every model, cross-fitted.

    Models are dealt into ``folds`` folds by position in each population; a fold's models
    are scored with Gaussians fitted on the other folds' models of both populations, so no
    fit ever sees a model it scores (leaving out only the scored model biases the attack
    toward the other population at small K). Higher = looks more like population A.

    Args:
        a, b: [models, examples] statistics under populations A and B.
        folds: number of folds, 2 ≤ folds ≤ min(len(a), len(b)).
        pooled: one variance per population pooled over examples (steadier at small K).

    Returns:
        (scores of a, scores of b), each shaped like its input.
    """
    if not 2 <= folds <= min(len(a), len(b)):
        raise ValueError(f"folds must be in [2, {min(len(a), len(b))}], got {folds}")
    fold_a, fold_b = _folds(len(a), folds), _folds(len(b), folds)
    score_a, score_b = np.empty(a.shape), np.empty(b.shape)
    for f in range(folds):
        mean_a, var_a = _fit(a[fold_a != f], pooled)
        mean_b, var_b = _fit(b[fold_b != f], pooled)
        for x, fold, out in ((a, fold_a, score_a), (b, fold_b, score_b)):
            x = x[fold == f]
            out[fold == f] = _gaussian_logpdf(x, mean_a, var_a) - _gaussian_logpdf(x, mean_b, var_b)
    return score_a, score_b


def ulira_auc(score_a: np.ndarray, score_b: np.ndarray, folds: int) -> np.ndarray:
    """Per-example attack AUC per fold [folds, E], pairing only models of the same fold
    (the per-example AUC is its mean over folds).

    Models of one fold were scored by one fit that saw neither, so under the null they are
    exchangeable and the AUC is ½ in expectation. Pairs across folds are not: the fit that
    scored b_g contains a_f and vice versa, which pulls their scores together and reads
    below ½ (0.44 on 8 + 8 Gaussian models, leave-one-pair-out)."""
    fold_a, fold_b = _folds(len(score_a), folds), _folds(len(score_b), folds)
    return np.stack([per_example_auc(score_a[fold_a == f], score_b[fold_b == f])
                     for f in range(folds)])


def per_example_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC-AUC per example (column) of scores ``pos`` [m, E] against ``neg`` [n, E]; ties ½."""
    diff = pos[:, None, :] - neg[None, :, :]
    return (diff > 0).mean((0, 1)) + 0.5 * (diff == 0).mean((0, 1))


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float) -> np.ndarray:
    """TPR at ``fpr`` of one threshold over all (model, example) scores, along the last axis.

    ``pos`` [..., P] and ``neg`` [..., N]: the threshold is the largest that lets at most
    a ``fpr`` share of negatives through (strictly above it)."""
    neg = -np.sort(-neg, axis=-1)
    k = int(math.floor(fpr * neg.shape[-1]))
    threshold = neg[..., min(k, neg.shape[-1] - 1)]
    return (pos > threshold[..., None]).mean(-1)


# ----------------------------------------------------------------------------- ε-score

def _epsilons_from_rates(fpr: np.ndarray, fnr: np.ndarray) -> np.ndarray:
    """The challenge's per-threshold ε: ∞ where fpr = fnr = 0, NaN (discarded) where exactly
    one is 0, else max(log(1−δ−fpr) − log fnr, log(1−δ−fnr) − log fpr) clipped at 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.fmax(np.log(1 - DELTA - fpr) - np.log(fnr), np.log(1 - DELTA - fnr) - np.log(fpr))
    eps = np.clip(eps, 0, None)
    eps = np.where((fpr == 0) ^ (fnr == 0), np.nan, eps)
    return np.where((fpr == 0) & (fnr == 0), np.inf, eps)


def _single_threshold_rates(pos: np.ndarray, neg: np.ndarray):
    """(fpr, fnr) [thresholds, E] of "positive iff φ ≥ t" at every pooled value t."""
    t = np.concatenate([pos, neg])[:, None, :]
    tpr = (pos[None] >= t).mean(1)
    return (neg[None] >= t).mean(1), 1 - tpr


def _double_threshold_rates(pos: np.ndarray, neg: np.ndarray):
    """(fpr, fnr) [intervals, E] of "the peakier population iff l ≤ φ ≤ r".

    Every interval between two pooled values is a distinct decision; kept are those some
    interval of width within the peakier range ± INTERVAL_BUFFER can make, as in the
    challenge's threshold grid (which it enumerates at 0.01 steps instead)."""
    range_pos, range_neg = np.ptp(pos, 0), np.ptp(neg, 0)
    swap = range_pos >= range_neg                        # the positive is the peakier one
    peaky, other = np.where(swap, neg, pos), np.where(swap, pos, neg)
    width = np.minimum(range_pos, range_neg)
    s = np.sort(np.concatenate([pos, neg]), 0)           # [2m, E]
    pad = np.full((1, s.shape[1]), np.inf)
    below, above = np.concatenate([-pad, s[:-1]]), np.concatenate([s[1:], pad])
    lo, hi = s[:, None, :], s[None, :, :]                # interval [s_i, s_j]
    keep = ((hi >= lo) & (hi - lo <= width + INTERVAL_BUFFER)
            & (above[None] - below[:, None] >= width - INTERVAL_BUFFER))
    inside = lambda x: ((lo[:, :, None] <= x[None, None]) & (x[None, None] <= hi[:, :, None])).mean(2)
    tpr, fpr = inside(peaky), inside(other)
    nan = np.where(keep, 0.0, np.nan)
    return (fpr + nan).reshape(-1, s.shape[1]), (1 - tpr + nan).reshape(-1, s.shape[1])


def per_example_epsilon(unlearned: np.ndarray, retrained: np.ndarray) -> np.ndarray:
    """The NeurIPS 2023 unlearning challenge's per-example ε (``_get_epsilons``).

    The positive population of each example is the one with the larger median. ε is the
    largest over two decision-rule families (single threshold; interval) of the
    (ε, δ=1e-5) bound implied by the rule's FPR and FNR, capped at 50; an example whose
    smaller population range is under 1 % of the larger gets the cap.

    Args:
        unlearned, retrained: [models, examples] statistics.

    Returns:
        ε per example [E]; NaN where every rule has FPR or FNR at 0 (scores 0 points).
    """
    retrain_pos = np.median(retrained, 0) > np.median(unlearned, 0)
    pos = np.where(retrain_pos, retrained, unlearned)
    neg = np.where(retrain_pos, unlearned, retrained)
    rates = [_single_threshold_rates(pos, neg), _double_threshold_rates(pos, neg)]
    fpr = np.concatenate([r[0] for r in rates])
    fnr = np.concatenate([r[1] for r in rates])
    eps = _epsilons_from_rates(fpr, fnr)
    with np.errstate(invalid="ignore"):
        eps = np.where(np.isnan(eps).all(0), np.nan, np.nanmax(np.where(np.isnan(eps), -1, eps), 0))
    range_pos, range_neg = np.ptp(pos, 0), np.ptp(neg, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        peaky = np.minimum(range_pos, range_neg) / np.maximum(range_pos, range_neg) < 0.01
    return np.clip(np.where(peaky, EPSILON_CAP, eps), 0, EPSILON_CAP)


def epsilon_points(eps: np.ndarray, models: int) -> np.ndarray:
    """Each example's share of the forget score: ε in bucket [k/2, (k+1)/2) earns 2^−k,
    for buckets ending at or below ceil(log(models − 1)); larger (or NaN) ε earns 0."""
    max_epsilon = math.ceil(math.log(models - 1))
    n_buckets = int(max_epsilon / BUCKET)
    bucket = np.floor(np.nan_to_num(eps, nan=np.inf) / BUCKET)
    return np.where(bucket < n_buckets, 0.5 ** np.minimum(bucket, n_buckets), 0.0)


# ----------------------------------------------------------------------------- KLOM

def klom(p: np.ndarray, q: np.ndarray, bins: int = KLOM_BINS) -> np.ndarray:
    """Per-example KL(p ‖ q) between binned margin samples p [m, E] and q [n, E].

    As ``compute_binned_KL_div``: margins clipped to ±100, ``bins`` equal bins over the
    pooled range, q floored at 1e-5 where p > 0, both renormalised. One deviation: the
    pooled maximum falls in the last bin (np.digitize in the original drops it)."""
    p, q = np.clip(p, -KLOM_CLIP, KLOM_CLIP), np.clip(q, -KLOM_CLIP, KLOM_CLIP)
    lo = np.minimum(p.min(0), q.min(0))
    hi = np.maximum(p.max(0), q.max(0))
    hi = np.where(hi > lo, hi, lo + 1)
    hist = lambda x: (np.clip(((x - lo) / (hi - lo) * bins).astype(int), 0, bins - 1)[..., None]
                      == np.arange(bins)).mean(0)  # [E, bins]
    hp, hq = hist(p), hist(q)
    hq = np.where(hp > 0, np.maximum(hq, KLOM_EPS), hq)
    hq = hq / hq.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(hp > 0, hp * np.log(hp / hq), 0.0)
    return terms.sum(1)


# ----------------------------------------------------------------------------- calibration

def permutation_null(fn, a: np.ndarray, b: np.ndarray, rounds: int, seed: int = 0) -> np.ndarray:
    """Per-example mean of ``fn(a', b')`` over ``rounds`` random re-partitions of the pooled
    models a ∪ b into groups of len(a) and len(b): the value the statistic reads at this
    population size when the two populations are exchangeable.

    ε and binned KL are biased far from their ideal with a handful of models per side (8 + 8
    oracles read ε forget score ≈ 0.18, KLOM ≈ 6 nats); subtracting (KLOM) or dividing by (ε)
    this null puts exchangeable populations at the ideal in expectation. Models, not
    examples, are permuted, so the examples' correlation through shared models is kept.

    Args:
        fn: (x [m, E], y [n, E]) -> per-example statistic [E].
        a, b: [models, examples] statistics of the two populations.
        rounds: random re-partitions to average.
    """
    pooled = np.concatenate([a, b])
    rng = np.random.default_rng(seed)
    total = np.zeros(a.shape[1])
    for _ in range(rounds):
        order = rng.permutation(len(pooled))
        total += fn(pooled[order[:len(a)]], pooled[order[len(a):]])
    return total / rounds


# ----------------------------------------------------------------------------- intervals

def bootstrap_indices(n: int, rounds: int, seed: int = 0) -> np.ndarray:
    """[rounds, n] resampled example positions (with replacement), seeded."""
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n))


def crossed_bootstrap_means(values: np.ndarray, rounds: int, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates [rounds] of the mean of ``values`` [units, examples], resampling
    units (e.g. folds of models) and examples independently (a two-way bootstrap).

    Every example of one fold is judged on the same few models, so examples alone are not
    independent draws: resampling only them would hide the spread between model draws."""
    rng = np.random.default_rng(seed)
    units = rng.integers(0, values.shape[0], size=(rounds, values.shape[0]))
    examples = rng.integers(0, values.shape[1], size=(rounds, values.shape[1]))
    per_unit = values[:, examples].mean(-1)                    # [units, rounds]
    return np.take_along_axis(per_unit.T, units, 1).mean(1)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> Tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap replicates."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)
