"""DataBundle: train / val / test tensors held on one device, and how sources become one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from unlearnbench.errors import ConfigError
from unlearnbench.registry import DATASETS



@dataclass
class Split:
    """One split as tensors: ``x`` float [N, C, H, W] (normalised), ``y`` int64 [N]."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: Tensor) -> "Split":
        idx = idx.to(self.y.device)
        return Split(self.x[idx], self.y[idx])


@dataclass
class RawData:
    """What a source returns: uint8 or float images, NCHW, plus labels and statistics."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: Optional[np.ndarray]
    test_y: Optional[np.ndarray]
    num_classes: int
    mean: Optional[Sequence[float]] = None  # per channel, in [0, 1] pixel scale
    std: Optional[Sequence[float]] = None
    test_fraction: float = 0.2  # used only when the source has no test split


@dataclass
class DataBundle:
    """Train / validation / test splits of one dataset, resident on one device."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    pixel_mean: Tensor  # per channel, to map back to [0, 1] pixels (SPD perturbations)
    pixel_std: Tensor

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def with_train_labels(self, y: Tensor) -> "DataBundle":
        return replace(self, train=Split(self.train.x, y))

    def fingerprint(self) -> str:
        """Cheap content hash: shapes, all labels and a strided sample of the pixels."""
        h = hashlib.sha256()
        for split in (self.train, self.val, self.test):
            h.update(str(tuple(split.x.shape)).encode())
            h.update(split.y.cpu().numpy().tobytes())
            flat = split.x.reshape(-1)
            step = max(1, flat.numel() // 100_000)
            h.update(flat[::step].float().cpu().numpy().tobytes())
        return h.hexdigest()[:16]


def _to_float_nchw(x: np.ndarray) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    if t.dtype == torch.uint8:
        t = t.float().div_(255.0)
    else:
        t = t.float()
    if t.ndim == 3:  # N, H, W grayscale
        t = t.unsqueeze(1)
    return t


def _split_off(n: int, fraction: float, seed: int, key: str) -> Tuple[np.ndarray, np.ndarray]:
    """Seeded permutation split: returns (kept, held_out) index arrays."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(key, f"must be in [0, 1), got {fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_out = int(round(n * fraction))
    return np.sort(perm[n_out:]), np.sort(perm[:n_out])


def _limit(x: Tensor, y: Tensor, limit: Optional[int], seed: int, key: str):
    if limit is None or limit >= len(y):
        return x, y
    if limit <= 0:
        raise ConfigError(key, f"must be a positive count or null, got {limit}")
    idx = torch.from_numpy(np.sort(np.random.default_rng(seed + 1).permutation(len(y))[:limit]))
    return x[idx], y[idx]


def build_bundle(raw: RawData, name: str, val_fraction: float, split_seed: int,
                 normalize: bool, limit_train: Optional[int] = None,
                 limit_test: Optional[int] = None) -> DataBundle:
    """Turns a source's arrays into normalised tensors with a seeded validation split."""
    x, y = _to_float_nchw(raw.train_x), torch.as_tensor(np.asarray(raw.train_y), dtype=torch.long)
    if raw.test_x is None:
        keep, held = _split_off(len(y), raw.test_fraction, split_seed, "dataset.test_fraction")
        test_x, test_y = x[held], y[held]
        x, y = x[keep], y[keep]
    else:
        test_x = _to_float_nchw(raw.test_x)
        test_y = torch.as_tensor(np.asarray(raw.test_y), dtype=torch.long)
    x, y = _limit(x, y, limit_train, split_seed, "dataset.limit_train")
    test_x, test_y = _limit(test_x, test_y, limit_test, split_seed, "dataset.limit_test")
    keep, held = _split_off(len(y), val_fraction, split_seed, "dataset.val_fraction")
    channels = x.shape[1]
    mean = torch.tensor(raw.mean if raw.mean is not None else x[keep].mean(dim=(0, 2, 3)).tolist())
    std = torch.tensor(raw.std if raw.std is not None else x[keep].std(dim=(0, 2, 3)).tolist())
    if mean.numel() != channels:
        raise ValueError(f"dataset '{name}': {mean.numel()} channel means for {channels} channels")
    if not normalize:
        mean, std = torch.zeros(channels), torch.ones(channels)
    std = std.clamp_min(1e-6)

    def norm(t: Tensor) -> Tensor:
        return ((t - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)).contiguous()

    keep_t, held_t = torch.from_numpy(keep), torch.from_numpy(held)
    return DataBundle(
        name=name,
        train=Split(norm(x[keep_t]), y[keep_t]),
        val=Split(norm(x[held_t]), y[held_t]),
        test=Split(norm(test_x), test_y),
        num_classes=int(raw.num_classes),
        pixel_mean=mean,
        pixel_std=std,
    )


# Keys of the dataset group the pipeline uses itself (splits, normalisation); the rest go
# to the source function.
SPLIT_KEYS: Dict[str, Any] = {"val_fraction": float, "split_seed": int, "normalize": bool,
                              "limit_train": Optional[int], "limit_test": Optional[int]}
# Keys that change where files come from, never the data a run sees (kept out of cache keys).
LOCATION_KEYS = ("download", "verify_md5", "path")


def check_dataset(dataset_cfg: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Validates the dataset block before anything loads; returns (source keys, split keys)."""
    keys = DATASETS.validate(dataset_cfg, "dataset", given=("data_root",), extra=SPLIT_KEYS)
    split = {k: keys.pop(k) for k in list(keys) if k in SPLIT_KEYS}
    return keys, split


def load_data(dataset_cfg: Dict[str, Any], data_root: str, device: torch.device) -> DataBundle:
    """Loads the configured dataset and moves it to ``device``."""
    source_keys, split = check_dataset(dataset_cfg)
    raw = DATASETS.get(dataset_cfg["name"])(data_root=data_root, **source_keys)
    bundle = build_bundle(raw, dataset_cfg["name"], split.get("val_fraction", 0.1),
                          split.get("split_seed", 0), split.get("normalize", True),
                          split.get("limit_train"), split.get("limit_test"))
    return to_device(bundle, device)


def to_device(bundle: DataBundle, device: torch.device) -> DataBundle:
    def move(s: Split) -> Split:
        return Split(s.x.to(device, non_blocking=True), s.y.to(device, non_blocking=True))

    return replace(bundle, train=move(bundle.train), val=move(bundle.val), test=move(bundle.test))
