"""torchvision datasets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN) in torchvision's layout.

MNIST, Fashion-MNIST and SVHN are parsed by torchvision; CIFAR's pickled batches by
``safe_pickle`` (torchvision would unpickle them without restriction). Offline and missing,
each fails with one message naming the files and where they go; present but unreadable,
with one saying which file is damaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from unlearnbench.data import safe_pickle
from unlearnbench.data.bundle import RawData
from unlearnbench.errors import ConfigError, DataError
from unlearnbench.registry import DATASETS

# name -> (torchvision class, files relative to data_root, classes, mean, std)
_SPECS: Dict[str, Tuple[str, List[str], int, Tuple[float, ...], Tuple[float, ...]]] = {
    "mnist": ("MNIST", [f"MNIST/raw/{f}" for f in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")], 10, (0.1307,), (0.3081,)),
    "fashion_mnist": ("FashionMNIST", [f"FashionMNIST/raw/{f}" for f in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")], 10, (0.2860,), (0.3530,)),
    "cifar10": ("CIFAR10", [f"cifar-10-batches-py/{f}" for f in (
        "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
        "test_batch", "batches.meta")], 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ("CIFAR100", [f"cifar-100-python/{f}" for f in ("train", "test", "meta")],
                 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ("SVHN", ["train_32x32.mat", "test_32x32.mat"], 10,
             (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}


def missing_files(name: str, data_root: str) -> List[str]:
    return [f for f in _SPECS[name][1] if not (Path(data_root) / f).exists()]


def _not_found(name: str, data_root: str, cause: Exception) -> ConfigError:
    files = ", ".join(str(Path(data_root) / f) for f in _SPECS[name][1])
    return ConfigError(
        "data_root",
        f"dataset '{name}' is not available under '{data_root}' and could not be downloaded "
        f"({type(cause).__name__}: {cause}). Put these files there: {files} "
        f"(or set data_root to the folder that holds them; dataset.download=true fetches them "
        f"when online).")


def _dataset_class(name: str, verify_md5: bool):
    """torchvision's class, or a subclass with its md5 sums blanked (presence checks only)."""
    import torchvision.datasets as tvd

    base = getattr(tvd, _SPECS[name][0])
    if verify_md5:
        return base
    # torchvision's check_integrity(path, md5=None) checks presence only; the parsers are unchanged.
    attrs = {}
    if hasattr(base, "split_list"):  # SVHN; MNIST-style classes check no md5 when reading
        attrs["split_list"] = {k: [v[0], v[1], None] for k, v in base.split_list.items()}
    # Same class name: MNIST-style datasets derive their folder from it.
    return type(base.__name__, (base,), attrs) if attrs else base


# What a damaged file makes torchvision's parsers raise (they check little themselves).
_PARSE_ERRORS = (RuntimeError, OSError, ValueError, AssertionError, EOFError, IndexError, KeyError,
                 TypeError)


def _damaged(name: str, data_root: str, err: Exception) -> DataError:
    return DataError("data_root", f"dataset '{name}' under '{data_root}' is damaged or not in "
                                  f"torchvision's layout ({type(err).__name__}: {err}); replace its files")


def _read(name: str, data_root: str, train: bool, download: bool, verify_md5: bool):
    if name in _CIFAR_KEYS:
        return _read_cifar(name, data_root, train, download, verify_md5)
    cls = _dataset_class(name, verify_md5)
    kwargs = {"split": "train" if train else "test"} if name == "svhn" else {"train": train}
    missing = missing_files(name, data_root)
    if not download and missing:
        raise _not_found(name, data_root, FileNotFoundError(", ".join(missing)))
    try:
        ds = cls(root=data_root, download=download, **kwargs)
    except _PARSE_ERRORS as err:  # URLError is an OSError
        raise (_not_found(name, data_root, err) if missing else _damaged(name, data_root, err)) from err
    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    labels = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    if data.ndim == 4 and data.shape[-1] == 3:  # CIFAR stores NHWC; SVHN is already NCHW
        data = data.transpose(0, 3, 1, 2)
    return data, labels.astype(np.int64)


# CIFAR batches are pickles: read by ``safe_pickle``, never by torchvision's pickle.load.
_CIFAR_KEYS = {"cifar10": "labels", "cifar100": "fine_labels"}


def _fetch_cifar(name: str, data_root: str, download: bool) -> None:
    """Downloads and unpacks the archive (md5-checked) if files are missing and allowed."""
    missing = missing_files(name, data_root)
    if not missing:
        return
    if not download:
        raise _not_found(name, data_root, FileNotFoundError(", ".join(missing)))
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import download_and_extract_archive

    base = getattr(tvd, _SPECS[name][0])
    try:
        download_and_extract_archive(base.url, data_root, filename=base.filename, md5=base.tgz_md5)
    except (RuntimeError, OSError) as err:  # URLError is an OSError
        raise _not_found(name, data_root, err) from err


def _cifar_batch(path: Path, label_key: str) -> Tuple[np.ndarray, np.ndarray]:
    """Images [N, 3, 32, 32] uint8 and labels [N] of one batch file, its shape checked."""
    entry = safe_pickle.load(path, "data_root")
    data = entry.get("data") if isinstance(entry, dict) else None
    labels = entry.get(label_key) if isinstance(entry, dict) else None
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or labels is None \
            or len(labels) != len(data):
        raise DataError("data_root", f"{path} is not a CIFAR batch (needs 'data' [N, 3072] and "
                                     f"'{label_key}' [N])")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _read_cifar(name: str, data_root: str, train: bool, download: bool, verify_md5: bool):
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import check_integrity

    _fetch_cifar(name, data_root, download)
    base = getattr(tvd, _SPECS[name][0])
    parts = []
    for file, md5 in base.train_list if train else base.test_list:
        path = Path(data_root) / base.base_folder / file
        if verify_md5 and not check_integrity(str(path), md5):
            raise DataError("data_root", f"{path} fails its md5 check (damaged or not the official "
                                         "file); replace it, or set dataset.verify_md5=false for your own")
        parts.append(_cifar_batch(path, _CIFAR_KEYS[name]))
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def _register(name: str) -> None:
    def load(data_root: str, download: bool = True, verify_md5: bool = True) -> RawData:
        train_x, train_y = _read(name, data_root, True, download, verify_md5)
        test_x, test_y = _read(name, data_root, False, download, verify_md5)
        _, _, n_cls, mean, std = _SPECS[name]
        return RawData(train_x, train_y, test_x, test_y, n_cls, mean, std)

    load.__name__ = f"load_{name}"
    load.__doc__ = f"torchvision's {_SPECS[name][0]} read from ``data_root``."
    DATASETS.register(name)(load)


for _name in _SPECS:
    _register(_name)
