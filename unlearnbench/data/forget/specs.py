"""The built-in forget sets: random, class, class_fraction, indices, mislabeled."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from unlearnbench.data.bundle import DataBundle
from unlearnbench.data.forget.base import ForgetSet, ForgetSpec, check_fraction
from unlearnbench.errors import ConfigError
from unlearnbench.registry import FORGET_SPECS


def _count(n: int, fraction: Optional[float], count: Optional[int], key: str) -> int:
    if (fraction is None) == (count is None):
        raise ConfigError(key, "set exactly one of forget.fraction and forget.count")
    if count is not None:
        if not 0 < int(count) < n:
            raise ConfigError("forget.count", f"must be in 1..{n - 1}, got {count}")
        return int(count)
    return max(1, int(round(float(fraction) * n)))


def _check_classes(classes: Sequence[int], num_classes: int) -> List[int]:
    out = [int(c) for c in classes]
    if not out:
        raise ConfigError("forget.classes", "give at least one class id")
    bad = [c for c in out if not 0 <= c < num_classes]
    if bad:
        raise ConfigError("forget.classes",
                          f"class ids {bad} out of range for {num_classes} classes (0..{num_classes - 1})")
    return out


@FORGET_SPECS.register("random")
class RandomForget(ForgetSpec):
    """A uniformly random share (``fraction``) or number (``count``) of training examples."""

    def __init__(self, fraction: Optional[float] = 0.1, count: Optional[int] = None,
                 seed: Optional[int] = None):
        super().__init__(seed)
        check_fraction(fraction, "forget.fraction")
        self.fraction, self.count = fraction, count

    def select(self, data: DataBundle, run_seed: int) -> ForgetSet:
        n = len(data.train)
        k = _count(n, self.fraction, self.count, "forget.fraction")
        return ForgetSet.from_forget(self.rng(run_seed).choice(n, k, replace=False), n, "forget.fraction")


@FORGET_SPECS.register("class")
class ClassForget(ForgetSpec):
    """Every training example of the given ``classes``."""

    def __init__(self, classes: Sequence[int] = (0,), seed: Optional[int] = None):
        super().__init__(seed)
        self.classes = list(classes)

    def select(self, data: DataBundle, run_seed: int) -> ForgetSet:
        classes = _check_classes(self.classes, data.num_classes)
        y = data.train.y.cpu().numpy()
        return ForgetSet.from_forget(np.flatnonzero(np.isin(y, classes)), len(y), "forget.classes")


@FORGET_SPECS.register("class_fraction")
class ClassFractionForget(ForgetSpec):
    """A random subset drawn only from ``classes`` (DEL's non-IID forget set).

    ``fraction`` is of the whole training split (``relative_to: train``, DEL's convention)
    or of the chosen classes' examples (``relative_to: classes``, sub-class forgetting).
    """

    def __init__(self, classes: Sequence[int] = (2, 5), fraction: float = 0.1,
                 relative_to: str = "train", seed: Optional[int] = None):
        super().__init__(seed)
        check_fraction(fraction, "forget.fraction")
        if relative_to not in ("train", "classes"):
            raise ConfigError("forget.relative_to", f"must be 'train' or 'classes', got '{relative_to}'")
        self.classes, self.fraction, self.relative_to = list(classes), fraction, relative_to

    def select(self, data: DataBundle, run_seed: int) -> ForgetSet:
        classes = _check_classes(self.classes, data.num_classes)
        y = data.train.y.cpu().numpy()
        pool = np.flatnonzero(np.isin(y, classes))
        base = len(y) if self.relative_to == "train" else len(pool)
        k = max(1, int(round(self.fraction * base)))
        if k > len(pool):
            raise ConfigError("forget.fraction",
                              f"{k} examples requested but classes {classes} have only {len(pool)}; "
                              "lower forget.fraction or set forget.relative_to=classes")
        return ForgetSet.from_forget(self.rng(run_seed).choice(pool, k, replace=False), len(y),
                                     "forget.fraction")


@FORGET_SPECS.register("indices")
class IndicesForget(ForgetSpec):
    """Training indices read from a .npy, .txt or .csv file (one integer per entry)."""

    def __init__(self, path: Optional[str] = None, seed: Optional[int] = None):
        super().__init__(seed)
        if not path:
            raise ConfigError("forget.path", "set it to a .npy/.txt/.csv file of training indices")
        if not Path(path).exists():
            raise ConfigError("forget.path", f"file not found: {path}")
        self.path = str(path)

    def _read(self) -> np.ndarray:
        if self.path.endswith(".npy"):
            arr = np.load(self.path)
        else:
            with warnings.catch_warnings():  # an empty file is reported below as an empty forget set
                warnings.simplefilter("ignore", UserWarning)
                arr = np.loadtxt(self.path, delimiter="," if self.path.endswith(".csv") else None,
                                 ndmin=1)
        arr = np.asarray(arr).reshape(-1)
        if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ConfigError("forget.path", f"{self.path} holds non-integer values")
        return arr.astype(np.int64)

    def select(self, data: DataBundle, run_seed: int) -> ForgetSet:
        idx, n = self._read(), len(data.train)
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise ConfigError("forget.path", f"indices {bad[:5].tolist()} out of range 0..{n - 1} "
                                             "(the training split after the validation hold-out)")
        uniq, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            raise ConfigError("forget.path", f"duplicated indices {uniq[counts > 1][:5].tolist()}")
        return ForgetSet.from_forget(idx, n, "forget.path")


@FORGET_SPECS.register("mislabeled")
class MislabeledForget(ForgetSpec):
    """``fraction`` of training labels flipped to another class before training; they are D_f."""

    modifies_train = True

    def __init__(self, fraction: float = 0.1, seed: Optional[int] = None):
        super().__init__(seed)
        check_fraction(fraction, "forget.fraction")
        self.fraction = fraction

    def select(self, data: DataBundle, run_seed: int) -> ForgetSet:
        rng, n = self.rng(run_seed), len(data.train)
        idx = np.sort(rng.choice(n, max(1, int(round(self.fraction * n))), replace=False))
        y = data.train.y.cpu().numpy().copy()
        # A shift in 1..C-1 guarantees the new label differs from the true one.
        y[idx] = (y[idx] + rng.integers(1, data.num_classes, size=idx.size)) % data.num_classes
        return ForgetSet.from_forget(idx, n, "forget.fraction",
                                     train_y=torch.from_numpy(y).to(data.train.y.device))
