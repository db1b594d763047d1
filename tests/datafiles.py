"""Writers of tiny datasets in the real on-disk formats torchvision reads."""

import pickle
import struct
from pathlib import Path

import numpy as np


def _idx(path: Path, arr: np.ndarray) -> None:
    # IDX: magic (0, 0, dtype 0x08 = ubyte, ndim), then big-endian int32 dims, then data.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, arr.ndim]))
        f.write(struct.pack(f">{arr.ndim}i", *arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def write_mnist_like(root: Path, folder: str, n_train: int = 120, n_test: int = 40, seed: int = 0) -> Path:
    """MNIST/FashionMNIST raw idx files under root/<folder>/raw."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / folder / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, (n, 28, 28)) + (y[:, None, None] * 20)  # learnable class signal
        _idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return Path(root)


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 40, seed: int = 0) -> Path:
    """cifar-10-batches-py: pickled batches whose keys load as str, like the Python 2 originals."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        labels = list(np.arange(n) % 10)
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f, protocol=2)
    return Path(root)


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """cifar-100-python: pickled train/test dicts with fine and coarse labels, and meta."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = list(np.arange(n) % 100)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         "fine_labels": fine, "coarse_labels": [c // 5 for c in fine]}, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)],
                     "coarse_label_names": [f"c{i}" for i in range(20)]}, f, protocol=2)
    return Path(root)


def write_svhn(root: Path, n_train: int = 100, n_test: int = 40, seed: int = 0) -> Path:
    """train_32x32.mat / test_32x32.mat: X uint8 [32, 32, 3, N], y [N, 1] in 1..10 (10 = digit 0)."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)
        savemat(Path(root) / f"{name}_32x32.mat",
                {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": y})
    return Path(root)


def write_npz(path: Path, n: int = 300, with_test: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 12)).astype(np.float32) + y[:, None]
    arrays = {"x": x, "y": y}
    if with_test:
        arrays.update(x_test=x[:50], y_test=y[:50])
    np.savez(path, **arrays)
    return Path(path)
