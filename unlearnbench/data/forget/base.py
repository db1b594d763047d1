"""ForgetSpec contract: validate at construction, then ``select`` forget indices over train."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import Tensor

from unlearnbench.data.bundle import DataBundle
from unlearnbench.errors import ConfigError
from unlearnbench.registry import FORGET_SPECS


@dataclass
class ForgetSet:
    """Forget / retain indices into the training split (disjoint, sorted, covering it)."""

    forget_idx: Tensor
    retain_idx: Tensor
    train_y: Optional[Tensor] = None  # relabelled training labels when the spec corrupts data
    scores: Optional[Dict[str, np.ndarray]] = None  # per-example statistics the spec ranked by

    @classmethod
    def from_forget(cls, forget_idx: np.ndarray, n_train: int, key: str,
                    train_y: Optional[Tensor] = None,
                    scores: Optional[Dict[str, np.ndarray]] = None) -> "ForgetSet":
        forget_idx = np.unique(np.asarray(forget_idx, dtype=np.int64))
        if forget_idx.size == 0:
            raise ConfigError(key, "the forget set is empty; choose a larger fraction or count")
        if forget_idx.size >= n_train:
            raise ConfigError(key, f"the forget set covers all {n_train} training examples; "
                                   "nothing would be retained")
        mask = np.zeros(n_train, dtype=bool)
        mask[forget_idx] = True
        return cls(torch.from_numpy(forget_idx), torch.from_numpy(np.flatnonzero(~mask)), train_y, scores)


class ForgetSpec:
    """Base class: subclasses take their YAML keys as constructor arguments."""

    registry_name = "base"
    # True when the spec changes the training data itself (the original must be retrained).
    modifies_train = False
    # True when ``select`` ranks examples with trained models: it then gets ``scores=`` a
    # ``memorization.ScoreSource`` that trains or loads them through the run's cache.
    needs_scores = False

    def __init__(self, seed: Optional[int] = None):
        self.seed = seed

    def select(self, data: DataBundle, run_seed: int) -> ForgetSet:
        raise NotImplementedError

    def rng(self, run_seed: int) -> np.random.Generator:
        return np.random.default_rng(run_seed if self.seed is None else self.seed)

    def describe(self) -> str:
        """Identity string for metrics.csv, e.g. ``random(fraction=0.1)``."""
        params = {k: v for k, v in vars(self).items() if v is not None and k != "seed"}
        inner = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
        return f"{self.registry_name}({inner})"


def check_fraction(value: Optional[float], key: str) -> None:
    if value is not None and not 0.0 < float(value) < 1.0:
        raise ConfigError(key, f"must be strictly between 0 and 1, got {value}")


def build_forget_spec(cfg: Dict[str, Any]) -> ForgetSpec:
    """Builds the configured spec; unknown keys name the offending `forget.` key."""
    return FORGET_SPECS.build(cfg, "forget")
