"""Bring your own arrays: an .npz with x, y and optionally x_test, y_test."""

from pathlib import Path
from typing import Optional

import numpy as np

from unlearnbench.data.bundle import RawData
from unlearnbench.errors import ConfigError
from unlearnbench.registry import DATASETS


def _as_nchw(x: np.ndarray, key: str) -> np.ndarray:
    if x.ndim == 2:  # tabular features become 1x1xD "images"
        return x[:, None, None, :]
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        return x
    raise ConfigError("dataset.path", f"array '{key}' has shape {x.shape}; expected 2-4 dims")


@DATASETS.register("npz")
def load_npz(data_root: str, path: Optional[str] = None, test_fraction: float = 0.2,
             num_classes: Optional[int] = None, channels_last: bool = False) -> RawData:
    """Arrays ``x`` [N, ...] and ``y`` [N]; uint8 images are scaled to [0, 1].

    ``channels_last: true`` reads 4-D ``x`` as NHWC. Without ``x_test``/``y_test``
    a seeded ``test_fraction`` is held out.
    """
    if not path:
        raise ConfigError("dataset.path", "set it to an .npz file with arrays x and y")
    file = Path(path)
    if not file.is_absolute() and not file.exists():
        file = Path(data_root) / path
    if not file.exists():
        raise ConfigError("dataset.path", f"file not found: {path}")
    with np.load(file) as arrays:
        missing = {"x", "y"} - set(arrays.files)
        if missing:
            raise ConfigError("dataset.path", f"{file} lacks arrays {sorted(missing)}")
        data = {k: arrays[k] for k in arrays.files}
    if ("x_test" in data) != ("y_test" in data):
        raise ConfigError("dataset.path", f"{file} has only one of x_test / y_test; give both or neither")
    xs, ys = {}, {}
    for xk, yk in (("x", "y"), ("x_test", "y_test")):
        if xk in data:
            x = data[xk]
            if channels_last and x.ndim == 4:
                x = x.transpose(0, 3, 1, 2)
            xs[xk], ys[yk] = _as_nchw(_pixels(x, xk, file), xk), _labels(data[yk], yk, file)
            if len(xs[xk]) != len(ys[yk]):
                raise ConfigError("dataset.path", f"{file}: {xk} has {len(xs[xk])} rows but {yk} has "
                                                  f"{len(ys[yk])} labels; they must match one to one")
    n_cls = _class_count(ys, num_classes, file)
    return RawData(xs["x"], ys["y"], xs.get("x_test"), ys.get("y_test"),
                   num_classes=n_cls, test_fraction=test_fraction)


def _pixels(x: np.ndarray, key: str, file: Path) -> np.ndarray:
    """``x`` if numeric and finite (NaN pixels would train models to NaN)."""
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ConfigError("dataset.path", f"{file}: array '{key}' has dtype {x.dtype}; expected numbers")
    if np.issubdtype(x.dtype, np.inexact) and not np.isfinite(x).all():
        raise ConfigError("dataset.path", f"{file}: array '{key}' holds NaN or infinite values")
    return x


def _labels(y: np.ndarray, key: str, file: Path) -> np.ndarray:
    """``y`` as int64 if it is one integer label per row (floats only if whole numbers)."""
    if y.ndim != 1:
        raise ConfigError("dataset.path", f"{file}: '{key}' has shape {y.shape}; expected one label per row")
    if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError("dataset.path", f"{file}: '{key}' must hold integer class labels, got "
                                          f"{y.dtype} values such as {y[:3].tolist()}")
    if len(y) and y.min() < 0:
        raise ConfigError("dataset.path", f"{file}: '{key}' holds negative label {int(y.min())}")
    return y.astype(np.int64)


def _class_count(ys, num_classes: Optional[int], file: Path) -> int:
    """``num_classes`` if set (labels must lie below it), else the labels' 0..K-1 range, which
    training must cover: a stray label 500 among ten classes is an error, not 501 classes."""
    top = max((int(y.max()) for y in ys.values() if len(y)), default=-1)
    if num_classes is not None:
        if num_classes < 2 or top >= num_classes:
            raise ConfigError("dataset.num_classes", f"{num_classes} classes, but labels run to {top}")
        return int(num_classes)
    seen = np.unique(ys["y"])
    if len(seen) != top + 1:
        raise ConfigError("dataset.num_classes", f"labels in {file} run to {top} but training has "
                          f"{len(seen)} distinct classes; relabel them 0..K-1 or set dataset.num_classes")
    return top + 1
