"""Shared fixtures: compose the real configs, shrunk with debug=smoke, into a temp dir."""

from pathlib import Path
from typing import Sequence

import pandas as pd
import pytest

from unlearnbench.config import compose


@pytest.fixture
def run_cfg(tmp_path: Path):
    """Returns f(overrides) -> config composed like the command, writing under tmp_path."""

    def make(overrides: Sequence[str] = (), name: str = "run"):
        cfg = compose(["debug=smoke", "device=cpu", f"output_root={tmp_path}",
                       f"run_dir={tmp_path / name}",
                       *overrides])
        return cfg

    return make


@pytest.fixture
def run_pipeline(run_cfg):
    """Runs the pipeline on composed overrides and returns metrics.csv as a DataFrame."""
    from unlearnbench.pipeline import run

    def go(overrides: Sequence[str] = (), name: str = "run") -> pd.DataFrame:
        path = run(run_cfg(overrides, name))
        assert path is not None and path.exists()
        return pd.read_csv(path)

    return go


def metric(frame: pd.DataFrame, name: str, role: str = "unlearned") -> float:
    """One metric value of one role from a metrics.csv frame."""
    rows = frame[(frame.metric == name) & (frame.role == role)]
    assert len(rows) == 1, f"{name}/{role}: {len(rows)} rows"
    return float(rows.value.iloc[0])


@pytest.fixture
def tiny_cifar10_root(tmp_path: Path) -> Path:
    """A tiny CIFAR-10 in torchvision's cifar-10-batches-py layout (10 images per batch).

    Keys are str, as torchvision reads the Python 2 originals with ``encoding="latin1"``
    (bytes keys would not be found). Load with dataset.download=false dataset.verify_md5=false.
    """
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    root = tmp_path / "tiny_cifar10"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [*((f"data_batch_{i}", 20) for i in range(1, 6)), ("test_batch", 40)]:
        labels = [int(c) for c in np.arange(n) % 10]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": labels,
                         "batch_label": name}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f, protocol=2)
    return root


@pytest.fixture
def tiny_svhn_root(tmp_path: Path) -> Path:
    """Tiny train_32x32.mat / test_32x32.mat: X uint8 [32, 32, 3, N], y [N, 1] in 1..10."""
    import numpy as np
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    root = tmp_path / "tiny_svhn"
    root.mkdir()
    for name, n in (("train", 100), ("test", 40)):
        y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)
        savemat(root / f"{name}_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": y})
    return root
