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
    xs = {}
    for key in ("x", "x_test"):
        if key in data:
            x = data[key]
            if channels_last and x.ndim == 4:
                x = x.transpose(0, 3, 1, 2)
            xs[key] = _as_nchw(x, key)
    y = data["y"].astype(np.int64)
    n_cls = int(num_classes or max(y.max(), data.get("y_test", y).max()) + 1)
    return RawData(xs["x"], y, xs.get("x_test"),
                   data["y_test"].astype(np.int64) if "y_test" in data else None,
                   num_classes=n_cls, test_fraction=test_fraction)
