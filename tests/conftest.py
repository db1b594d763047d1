"""Shared fixtures: compose the real configs, shrunk with debug=smoke, into a temp dir."""

from pathlib import Path
from typing import Sequence

import pandas as pd
import pytest
import torch

from unlearnbench.config import compose


@pytest.fixture
def one_thread():
    """Tiny models: one intra-op thread avoids oversubscription on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
        result = run(run_cfg(overrides, name))
        assert not result.skipped and result.metrics_path.exists()
        return pd.read_csv(result.metrics_path)

    return go


def metric(frame: pd.DataFrame, name: str, role: str = "unlearned") -> float:
    """One metric value of one role from a metrics.csv frame."""
    rows = frame[(frame.metric == name) & (frame.role == role)]
    assert len(rows) == 1, f"{name}/{role}: {len(rows)} rows"
    return float(rows.value.iloc[0])


@pytest.fixture
def tiny_cifar10_root(tmp_path: Path) -> Path:
    """A tiny CIFAR-10 (100 train / 40 test) in torchvision's cifar-10-batches-py layout.

    Load it with ``data_root=<this> dataset.download=false dataset.verify_md5=false``.
    """
    from datafiles import write_cifar10

    return write_cifar10(tmp_path / "tiny_cifar10")


@pytest.fixture
def tiny_svhn_root(tmp_path: Path) -> Path:
    """Tiny SVHN train_32x32.mat / test_32x32.mat (100 / 40; X uint8 [32,32,3,N], y 1..10)."""
    from datafiles import write_svhn

    return write_svhn(tmp_path / "tiny_svhn")


@pytest.fixture
def tiny_cifar100_root(tmp_path: Path) -> Path:
    """data_root holding cifar-100-python/ in the real format (300 train, 100 test)."""
    from datafiles import write_cifar100

    return write_cifar100(tmp_path / "tiny_cifar100", n_train=300, n_test=100)


def models_in(cache) -> list:
    """A cache's trained-model entries (originals, oracles), without the reference rows
    (stage ``reference``, metrics only) that finished runs also store."""
    return [e for e in cache.entries() if e.stage != "reference"]
