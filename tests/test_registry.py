"""Every registered component: has a config, its YAML keys match its constructor, and it runs."""

from pathlib import Path

import pytest
import yaml

from unlearnbench.config import compose, config_dir
from unlearnbench.data.forget.base import ForgetSpec
from unlearnbench.registry import DATASETS, FORGET_SPECS, METHODS, MODELS, UnknownNameError

CONF = Path(config_dir())


def yaml_keys(group: str, name: str) -> set:
    """The keys of ``<group>=<name>`` as Hydra composes it (shared defaults included)."""
    from omegaconf import OmegaConf

    block = OmegaConf.to_container(compose([f"{group}={name}"])[group])
    return set(block) - {"name"}


def test_shared_method_files_are_not_methods():
    shared = {p.stem for p in (CONF / "method").glob("_*.yaml")}
    assert shared == {"_gradient", "_localize"}
    assert not shared & set(METHODS.names())


@pytest.mark.parametrize("name", METHODS.names())
def test_method_yaml_keys_equal_constructor_parameters(name):
    assert yaml_keys("method", name) == set(METHODS.keys_of(name)), (
        f"conf/method/{name}.yaml must list exactly the constructor's keys")


@pytest.mark.parametrize("name", FORGET_SPECS.names())
def test_forget_yaml_keys_equal_constructor_parameters(name):
    assert yaml_keys("forget", name) == set(FORGET_SPECS.keys_of(name))


@pytest.mark.parametrize("name", MODELS.names())
def test_model_yaml_keys_equal_factory_parameters(name):
    assert yaml_keys("model", name) == set(MODELS.keys_of(name, ("input_shape", "num_classes")))


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_has_a_config(name):
    assert (CONF / "dataset" / f"{name}.yaml").exists()


def method_overrides(name: str, tmp_path: Path) -> list:
    """What a method needs beyond its YAML defaults to run (checkpoint: a model file)."""
    if name != "checkpoint":
        return []
    import torch
    from omegaconf import OmegaConf

    from unlearnbench.models import build_model

    model_cfg = OmegaConf.to_container(compose(["debug=smoke"]).model)
    path = tmp_path / "unlearned.pt"
    torch.save(build_model(model_cfg, (1, 8, 8), 10).state_dict(), path)
    return [f"method.path={path}"]


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_runs_end_to_end(run_pipeline, tmp_path, name):
    frame = run_pipeline([f"method={name}", *method_overrides(name, tmp_path)])
    assert set(frame.method) == {name}
    assert frame.value.notna().all()


@pytest.mark.parametrize("name", FORGET_SPECS.names())
def test_every_forget_spec_runs_end_to_end(run_pipeline, tmp_path, name):
    extra = []
    if name == "indices":
        path = tmp_path / "forget.txt"
        path.write_text("\n".join(map(str, range(0, 100, 3))))
        extra = [f"forget.path={path}"]
    frame = run_pipeline([f"forget={name}", *extra])
    assert frame.forget_size.iloc[0] > 0


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_every_model_takes_dataset_shapes(name, shape):
    import torch

    from unlearnbench.models import build_model, classifier_of

    cfg = {"name": name, **yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())}
    model = build_model(cfg, shape, 7).eval()
    assert model(torch.zeros(2, *shape)).shape == (2, 7)
    assert classifier_of(model).out_features == 7


def test_resnet18_cifar_stem_has_no_maxpool():
    from torch import nn

    from unlearnbench.models import build_model

    cifar = build_model({"name": "resnet18", "stem": "cifar"}, (3, 32, 32), 10)
    assert cifar.conv1.kernel_size == (3, 3)
    assert not any(isinstance(m, nn.MaxPool2d) for m in cifar.modules())
    imagenet = build_model({"name": "resnet18", "stem": "imagenet"}, (3, 32, 32), 10)
    assert imagenet.conv1.kernel_size == (7, 7)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match=r"Did you mean: finetune\?.*Available:"):
        METHODS.get("finetun")


def test_methods_declare_a_version():
    for name in METHODS.names():
        assert METHODS.get(name).version, name
    assert issubclass(FORGET_SPECS.get("random"), ForgetSpec)
