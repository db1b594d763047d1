"""Every dataset loader on tiny files in the real on-disk format; offline failures."""

import numpy as np
import pytest
import torch

from datafiles import write_cifar10, write_cifar100, write_mnist_like, write_npz, write_svhn
from unlearnbench.data import load_data
from unlearnbench.errors import ConfigError, DataError
from unlearnbench.registry import DATASETS

CPU = torch.device("cpu")
OFFLINE = {"download": False, "verify_md5": False, "val_fraction": 0.1, "split_seed": 0,
           "normalize": True}


@pytest.mark.parametrize("name,writer,shape,n_train,n_test,classes", [
    ("mnist", lambda r: write_mnist_like(r, "MNIST"), (1, 28, 28), 120, 40, 10),
    ("fashion_mnist", lambda r: write_mnist_like(r, "FashionMNIST"), (1, 28, 28), 120, 40, 10),
    ("cifar10", write_cifar10, (3, 32, 32), 100, 40, 10),
    ("cifar100", write_cifar100, (3, 32, 32), 200, 100, 100),
    ("svhn", write_svhn, (3, 32, 32), 100, 40, 10),
])
def test_torchvision_loaders_read_real_formats(tmp_path, name, writer, shape, n_train, n_test, classes):
    writer(tmp_path)
    data = load_data({"name": name, **OFFLINE}, str(tmp_path), CPU)
    assert data.input_shape == shape and data.num_classes == classes
    assert len(data.train) + len(data.val) == n_train and len(data.test) == n_test
    assert len(data.val) == round(0.1 * n_train)
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.long
    assert int(data.train.y.max()) < classes and int(data.train.y.min()) >= 0


def test_svhn_label_ten_is_digit_zero(tmp_path):
    write_svhn(tmp_path, n_train=20, n_test=10)
    data = load_data({"name": "svhn", **OFFLINE, "val_fraction": 0.0}, str(tmp_path), CPU)
    assert sorted(set(data.test.y.tolist())) == list(range(10))


def test_missing_dataset_offline_names_files_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"data_root.*cifar-10-batches-py/data_batch_1"):
        load_data({"name": "cifar10", **OFFLINE}, str(tmp_path), CPU)


def test_md5_check_rejects_files_that_are_not_the_release(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(DataError, match="data_root.*md5"):
        load_data({"name": "cifar10", **OFFLINE, "verify_md5": True}, str(tmp_path), CPU)


def test_digits_split_is_seeded_and_disjoint():
    a = load_data({"name": "digits", "val_fraction": 0.1, "split_seed": 0}, "unused", CPU)
    b = load_data({"name": "digits", "val_fraction": 0.1, "split_seed": 0}, "unused", CPU)
    assert torch.equal(a.val.x, b.val.x)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    # normalised with training statistics
    assert abs(float(a.train.x.mean())) < 0.05


def test_npz_with_and_without_test_split(tmp_path):
    cfg = {"name": "npz", "path": str(write_npz(tmp_path / "a.npz")), "val_fraction": 0.2}
    data = load_data(cfg, str(tmp_path), CPU)
    assert data.num_classes == 3 and data.input_shape == (1, 1, 12)
    assert len(data.test) == 60 and len(data.train) == 192
    cfg["path"] = str(write_npz(tmp_path / "b.npz", with_test=True))
    assert len(load_data(cfg, str(tmp_path), CPU).test) == 50


def test_npz_missing_file_names_key(tmp_path):
    with pytest.raises(ConfigError, match="dataset.path"):
        load_data({"name": "npz", "path": str(tmp_path / "nope.npz")}, str(tmp_path), CPU)


def test_unknown_dataset_key_is_rejected():
    with pytest.raises(ConfigError, match="dataset.colour"):
        load_data({"name": "digits", "colour": 1}, "unused", CPU)


def test_every_dataset_has_a_config_and_a_test():
    tested = {"mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "digits", "npz"}
    # A newly registered dataset must be added to this file's tests.
    assert set(DATASETS.names()) <= tested | {"synthetic"}
