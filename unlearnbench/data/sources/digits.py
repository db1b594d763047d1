"""scikit-learn's bundled 8x8 digits: real, offline, 1,797 images — the default dataset."""

import numpy as np

from unlearnbench.data.bundle import RawData
from unlearnbench.registry import DATASETS


@DATASETS.register("digits")
def load_digits(data_root: str, test_fraction: float = 0.2) -> RawData:
    """Digits has no official test split: ``test_fraction`` of it is held out (seeded)."""
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    return RawData(x, d.target.astype(np.int64), None, None, num_classes=10,
                   test_fraction=test_fraction)
