"""A generated dataset of any shape and size: class means plus Gaussian noise, seeded.

For benchmarks and tests that need data of a given shape (CIFAR-like 3x32x32, or many
classes) without files: class ``k``'s images are ``mean_k + noise`` with the class means
orthogonal and ``signal`` noise standard deviations apart, so the Bayes error is known.
"""

import math

import numpy as np

from unlearnbench.data.bundle import RawData
from unlearnbench.errors import ConfigError
from unlearnbench.registry import DATASETS


def class_means(num_classes: int, dim: int, signal: float, rng: np.random.Generator) -> np.ndarray:
    """``num_classes`` orthogonal vectors of length signal/sqrt(2): pairwise distance ``signal``."""
    if num_classes > dim:
        raise ConfigError("dataset.num_classes",
                          f"{num_classes} classes need at least as many pixels (channels*height*width={dim})")
    q, _ = np.linalg.qr(rng.standard_normal((dim, num_classes)))
    return (q.T * (signal / math.sqrt(2.0))).astype(np.float32)


@DATASETS.register("synthetic")
def load_synthetic(data_root: str, n_train: int = 10000, n_test: int = 2000, channels: int = 3,
                   height: int = 32, width: int = 32, num_classes: int = 10, signal: float = 4.0,
                   seed: int = 0) -> RawData:
    """Balanced classes (label = index mod ``num_classes``, then shuffled), N(0, 1) noise.

    ``signal`` is the distance between two class means in noise standard deviations, so a
    pair of classes is confused with probability Φ(−signal/2) by the Bayes classifier.
    """
    for key, value in (("n_train", n_train), ("n_test", n_test), ("channels", channels),
                       ("height", height), ("width", width)):
        if int(value) <= 0:
            raise ConfigError(f"dataset.{key}", f"must be positive, got {value}")
    if int(num_classes) < 2:
        raise ConfigError("dataset.num_classes", f"needs at least 2 classes, got {num_classes}")
    if signal < 0:
        raise ConfigError("dataset.signal", f"must be >= 0, got {signal}")
    rng = np.random.default_rng(seed)
    shape = (channels, height, width)
    means = class_means(num_classes, channels * height * width, float(signal), rng)

    def sample(n: int):
        y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
        x = rng.standard_normal((n, channels * height * width), dtype=np.float32)
        x += means[y]
        return x.reshape(n, *shape), y

    train_x, train_y = sample(int(n_train))
    test_x, test_y = sample(int(n_test))
    return RawData(train_x, train_y, test_x, test_y, num_classes=int(num_classes))
