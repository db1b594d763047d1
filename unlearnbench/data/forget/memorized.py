"""Forget sets of memorized (or typical) examples, ranked by a memorization score."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from unlearnbench.data.bundle import DataBundle
from unlearnbench.data.forget.base import ForgetSet, ForgetSpec, check_fraction
from unlearnbench.data.forget.specs import _count
from unlearnbench.errors import ConfigError
from unlearnbench.registry import FORGET_SPECS

BANDS = ("high", "mid", "low", "top")


@FORGET_SPECS.register("memorized")
class MemorizedForget(ForgetSpec):
    """``fraction``/``count`` examples drawn from a memorization band (RUM's groups).

    The training split is ranked by the ``proxy`` score and cut into thirds: ``high``,
    ``mid``, ``low``; the forget set is a random draw (``seed``) from the chosen third.
    ``top`` takes exactly the highest-scored examples instead (no randomness).
    ``class_balanced`` ranks within each class and takes from each class in proportion
    to its size, so the forget set's class mix is the training split's.
    """

    needs_scores = True

    def __init__(self, band: str = "high", fraction: Optional[float] = 0.1, count: Optional[int] = None,
                 proxy: str = "heldout", k_models: int = 32, class_balanced: bool = False,
                 seed: Optional[int] = None):
        super().__init__(seed)
        from unlearnbench.memorization import PROXIES

        check_fraction(fraction, "forget.fraction")
        if band not in BANDS:
            raise ConfigError("forget.band", f"'{band}' is not one of {'|'.join(BANDS)}")
        if proxy not in PROXIES:
            raise ConfigError("forget.proxy", f"'{proxy}' is not one of {'|'.join(PROXIES)}")
        if proxy == "heldout" and (k_models < 2 or k_models % 2):
            raise ConfigError("forget.k_models", f"the heldout bank needs an even count >= 2, got {k_models}")
        self.band, self.fraction, self.count, self.proxy = band, fraction, count, proxy
        self.k_models = k_models if proxy == "heldout" else None  # learning events use one model
        self.class_balanced = class_balanced

    def select(self, data: DataBundle, run_seed: int, scores=None) -> ForgetSet:
        if scores is None:
            raise ValueError("forget=memorized ranks examples with trained models: call it through "
                             "pipeline.select_forget (it passes scores=ScoreSource)")
        n = len(data.train)
        k = _count(n, self.fraction, self.count, "forget.fraction")
        arrays = scores.arrays(data, self.proxy, self.k_models)
        y = data.train.y.cpu().numpy()
        rng = self.rng(run_seed)
        groups = [np.flatnonzero(y == c) for c in np.unique(y)] if self.class_balanced else [np.arange(n)]
        picked = [self._pick(g, arrays["score"][g], share, rng)
                  for g, share in zip(groups, _shares(k, [len(g) for g in groups]))]
        return ForgetSet.from_forget(np.concatenate(picked), n, "forget.fraction",
                                     scores=_record(arrays, self.proxy))

    def _pick(self, idx: np.ndarray, score: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` of ``idx`` from the band; ties in the score are broken at random."""
        order = idx[np.lexsort((rng.random(len(idx)), -score))]  # highest score first
        if self.band == "top":
            return order[:k]
        thirds = np.array_split(order, 3)
        pool = thirds[("high", "mid", "low").index(self.band)]
        if k > len(pool):
            raise ConfigError("forget.fraction", f"{k} examples requested from the {self.band} band, "
                                                 f"which holds {len(pool)}; lower forget.fraction/count")
        return rng.choice(pool, k, replace=False)


def _shares(k: int, sizes) -> list:
    """``k`` split over groups in proportion to ``sizes`` (largest remainder)."""
    sizes = np.asarray(sizes, dtype=float)
    exact = k * sizes / sizes.sum()
    out = np.floor(exact).astype(int)
    out[np.argsort(-(exact - out), kind="stable")[: k - out.sum()]] += 1
    return out.tolist()


def _record(arrays: Dict[str, np.ndarray], proxy: str) -> Dict[str, np.ndarray]:
    """What the run dir's ``memorization.npz`` keeps: every array plus the proxy's name."""
    return {**arrays, "proxy": np.array(proxy)}
