"""Bad input fails before training, with a message naming the config key to change."""

import pytest
from hydra.errors import ConfigCompositionException

from unlearnbench.config import compose
from unlearnbench.errors import ConfigError
from unlearnbench.pipeline import run
from unlearnbench.registry import UnknownNameError


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if any model training starts."""
    import unlearnbench.pipeline as pipeline

    def boom(*args, **kwargs):
        raise AssertionError("training started before the config was validated")

    monkeypatch.setattr(pipeline, "train_stage", boom)


@pytest.fixture
def no_data(monkeypatch):
    """Fails the test if any data starts loading."""
    import unlearnbench.pipeline as pipeline

    def boom(*args, **kwargs):
        raise AssertionError("data loading started before the config was validated")

    monkeypatch.setattr(pipeline, "load_stage", boom)


@pytest.mark.parametrize("overrides,key", [
    (["forget.fraction=abc"], "forget.fraction"),
    (["seed=-1"], "seed"),
    (["seed=1.5"], "seed"),
    (["method.epochs=1.5"], "method.epochs"),
    (["method.batch_size=0"], "method.batch_size"),
    (["method.localize=7"], "method.localize"),
    (["+model.colour=1"], "model.colour"),
    (["model.hidden=abc"], "model.hidden"),
    (["+dataset.colour=1"], "dataset.colour"),
    (["dataset.val_fraction=abc"], "dataset.val_fraction"),
    (["train.epochs=2.5"], "train.epochs"),
    (["progress=maybe"], "progress"),
    (["+eval.params={accuracy: {nope: 1}}"], "eval.params.accuracy.nope"),
    (["original_path=/nonexistent/model.pt"], "original_path"),
    (["plugins=[no_such_plugin_module]"], "plugins"),
])
def test_bad_values_are_refused_before_any_data_loads(run_cfg, no_data, overrides, key):
    with pytest.raises((ConfigError, UnknownNameError)) as err:
        run(run_cfg(overrides))
    assert f"`{key}`" in str(err.value)


def test_unknown_group_option_lists_choices():
    with pytest.raises(ConfigCompositionException, match="method"):
        compose(["method=nope"])


@pytest.mark.parametrize("overrides,key", [
    (["forget.fraction=0"], "forget.fraction"),
    (["forget.fraction=1.0"], "forget.fraction"),
    (["forget.fraction=-0.2"], "forget.fraction"),
    (["forget.fraction=null", "forget.count=0"], "forget.count"),
    (["forget=class", "forget.classes=[10]"], "forget.classes"),
    (["forget=class", "forget.classes=[]"], "forget.classes"),
    (["forget=class_fraction", "forget.fraction=0.5"], "forget.fraction"),
    (["forget=indices"], "forget.path"),
    (["forget=indices", "forget.path=/nonexistent/ids.npy"], "forget.path"),
    (["method.lr=-1"], "method.lr"),
    (["+method.colour=1"], "method.colour"),
    (["train.optimizer=lbfgs"], "train.optimizer"),
    (["device=tpu"], "device"),
    (["dataset=cifar10", "dataset.download=false"], "data_root"),
    (["eval.evaluators=[accuracy,nope]"], "eval.evaluators"),
])
def test_bad_config_fails_before_training(run_cfg, no_training, overrides, key):
    with pytest.raises((ConfigError, UnknownNameError)) as err:
        run(run_cfg(overrides))
    assert key in str(err.value)


def test_unknown_method_name_suggests(run_cfg, no_training):
    with pytest.raises(UnknownNameError, match="Did you mean: gradient_ascent"):
        run(run_cfg(["method.name=gradient_ascen"]))


@pytest.mark.parametrize("content,message", [
    ("0\n1\n99999\n", "out of range"),
    ("0\n1\n1\n", "duplicated"),
])
def test_bad_indices_file(run_cfg, no_training, tmp_path, content, message):
    path = tmp_path / "ids.txt"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"forget.path.*{message}"):
        run(run_cfg(["forget=indices", f"forget.path={path}"]))


def test_empty_indices_file_is_an_empty_forget_set(run_cfg, no_training, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("")
    with pytest.raises(ConfigError, match="forget.path.*empty"):
        run(run_cfg(["forget=indices", f"forget.path={path}"]))


def test_cuda_without_cuda(run_cfg, no_training):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="device"):
        run(run_cfg(["device=cuda"]))


def test_config_error_survives_pickling_as_sweep_workers_send_it_back():
    import pickle

    error = pickle.loads(pickle.dumps(ConfigError("forget.fraction", "must be in (0, 1), got 1.5")))
    assert isinstance(error, ConfigError) and error.key == "forget.fraction"
    assert str(error) == "Invalid config `forget.fraction`: must be in (0, 1), got 1.5"
