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


# --- Tiny CIFAR files in the real on-disk format (Python-2 pickles, as distributed) ---------

class _Py2Str(bytes):
    """A key/name that the CIFAR files store as a Python 2 ``str`` (SHORT_BINSTRING)."""


def _write_py2_pickle(path: Path, obj) -> None:
    """Pickles like Python 2 did: byte-string keys load as ``str`` with encoding='latin1'
    (torchvision's reader) and as ``bytes`` with encoding='bytes' (the CIFAR site's reader)."""
    import io
    import pickle
    import struct

    class Py2Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_py2_str(self, s):
            self.write(pickle.SHORT_BINSTRING + struct.pack("<B", len(s)) + bytes(s))
            self.memoize(s)

        dispatch[_Py2Str] = save_py2_str

    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue())


def _cifar_images(rng, labels, num_classes):
    """uint8 [N, 3072] (channel-major rows): a class-dependent mean plus noise, so tiny
    models can learn something."""
    import numpy as np

    base = rng.integers(0, 256, size=(num_classes, 3072))
    noise = rng.integers(-40, 41, size=(len(labels), 3072))
    return np.clip(base[labels] + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def tiny_cifar10_root(tmp_path: Path) -> Path:
    """data_root holding cifar-10-batches-py/ with 5 x 40 train and 40 test images."""
    import numpy as np

    folder = tmp_path / "tiny_cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, size=40)
        _write_py2_pickle(folder / name, {
            _Py2Str(b"batch_label"): _Py2Str(name.encode()),
            _Py2Str(b"labels"): [int(v) for v in labels],
            _Py2Str(b"data"): _cifar_images(rng, labels, 10),
            _Py2Str(b"filenames"): [_Py2Str(f"{name}_{i}.png".encode()) for i in range(40)],
        })
    _write_py2_pickle(folder / "batches.meta", {
        _Py2Str(b"num_cases_per_batch"): 40, _Py2Str(b"num_vis"): 3072,
        _Py2Str(b"label_names"): [_Py2Str(f"class{i}".encode()) for i in range(10)]})
    return folder.parent


@pytest.fixture
def tiny_cifar100_root(tmp_path: Path) -> Path:
    """data_root holding cifar-100-python/ with 300 train and 100 test images."""
    import numpy as np

    folder = tmp_path / "tiny_cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, n in (("train", 300), ("test", 100)):
        fine = np.arange(n) % 100
        _write_py2_pickle(folder / name, {
            _Py2Str(b"batch_label"): _Py2Str(name.encode()),
            _Py2Str(b"fine_labels"): [int(v) for v in fine],
            _Py2Str(b"coarse_labels"): [int(v) // 5 for v in fine],
            _Py2Str(b"data"): _cifar_images(rng, fine, 100),
            _Py2Str(b"filenames"): [_Py2Str(f"{name}_{i}.png".encode()) for i in range(n)],
        })
    _write_py2_pickle(folder / "meta", {
        _Py2Str(b"fine_label_names"): [_Py2Str(f"fine{i}".encode()) for i in range(100)],
        _Py2Str(b"coarse_label_names"): [_Py2Str(f"coarse{i}".encode()) for i in range(20)]})
    return folder.parent
