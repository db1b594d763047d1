"""The generated `synthetic` dataset: shapes, balance, seeding, and that its signal is learnable."""

import numpy as np
import pytest
import torch

from tests.conftest import metric
from unlearnbench.data import load_data
from unlearnbench.data.sources.synthetic import class_means, load_synthetic
from unlearnbench.engine import Recipe, RunContext, fit, predict
from unlearnbench.errors import ConfigError
from unlearnbench.models import build_model

CPU = torch.device("cpu")


def small(**kw):
    cfg = {"name": "synthetic", "n_train": 100, "n_test": 30, "channels": 2, "height": 5,
           "width": 4, "num_classes": 3, "signal": 4.0, "seed": 0, "val_fraction": 0.1}
    cfg.update(kw)
    return cfg


def test_shapes_and_balance():
    data = load_data(small(), "", CPU)
    assert tuple(data.train.x.shape) == (90, 2, 5, 4)  # 10% of 100 held out as validation
    assert tuple(data.val.x.shape) == (10, 2, 5, 4)
    assert tuple(data.test.x.shape) == (30, 2, 5, 4)
    assert data.num_classes == 3 and data.train.x.dtype == torch.float32
    raw = load_synthetic("", n_train=100, n_test=30, channels=2, height=5, width=4, num_classes=3)
    assert np.bincount(raw.train_y).tolist() == [34, 33, 33]  # label = index mod 3
    assert np.bincount(raw.test_y).tolist() == [10, 10, 10]


def test_class_means_are_signal_apart():
    m = class_means(4, 20, 3.0, np.random.default_rng(0))
    dist = np.linalg.norm(m[:, None] - m[None], axis=-1)
    off_diagonal = dist[~np.eye(4, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, 3.0, rtol=1e-5)


def test_seeded():
    a, b = load_synthetic("", n_train=50, n_test=10, seed=3), load_synthetic("", n_train=50, n_test=10, seed=3)
    c = load_synthetic("", n_train=50, n_test=10, seed=4)
    np.testing.assert_array_equal(a.train_x, b.train_x)
    np.testing.assert_array_equal(a.test_y, b.test_y)
    assert not np.array_equal(a.train_x, c.train_x)


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match="dataset.num_classes"):
        load_synthetic("", channels=1, height=2, width=2, num_classes=5)
    with pytest.raises(ConfigError, match="dataset.signal"):
        load_synthetic("", signal=-1.0)
    with pytest.raises(ConfigError, match="dataset.n_train"):
        load_synthetic("", n_train=0)


def _test_accuracy(signal: float) -> float:
    data = load_data(small(n_train=800, n_test=400, channels=1, height=8, width=8, num_classes=4,
                           signal=signal), "", CPU)
    recipe = Recipe(epochs=3, batch_size=64, lr=0.05)
    ctx = RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False)
    torch.manual_seed(0)
    model = build_model({"name": "mlp", "hidden": [64]}, data.input_shape, 4)
    fit(model, data.train, recipe, ctx, desc="synthetic")
    return float(predict(model, data.test.x, ctx).argmax(1).eq(data.test.y).float().mean())


def test_mlp_learns_the_signal_and_nothing_without_it():
    # signal 6: the Bayes classifier confuses a pair of classes with prob. Phi(-3) = 0.13%.
    assert _test_accuracy(6.0) > 0.9
    assert _test_accuracy(0.0) < 0.4  # no signal: chance is 0.25


def test_pipeline_runs_on_synthetic(run_pipeline):
    frame = run_pipeline(["dataset=synthetic", "dataset.n_train=300", "dataset.n_test=100",
                          "dataset.height=8", "dataset.width=8"])
    assert 0.0 <= metric(frame, "test_acc", "original") <= 1.0
