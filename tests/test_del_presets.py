"""The DEL reproduction presets compose to the official settings and run end to end."""

import pytest

from conftest import metric

PRESETS = {
    "del_cifar10_iid": ("cifar10", "random", None),
    "del_cifar10_noniid": ("cifar10", "class_fraction", [2, 5]),
    "del_svhn_noniid": ("svhn", "class_fraction", [3, 6]),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_composes_to_the_official_settings(run_cfg, name):
    dataset, forget, classes = PRESETS[name]
    cfg = run_cfg([f"experiment={name}"])
    assert cfg.experiment_name == name and cfg.dataset.name == dataset
    assert cfg.dataset.normalize is False and cfg.train.augment == "none"
    assert cfg.model.name == "resnet18" and cfg.model.stem == "cifar" and cfg.model.init == "torchvision"
    assert cfg.dataset.val_fraction == 0.0 and cfg.train.final_lr_fraction == 0.01
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.weight_decay, cfg.train.schedule,
            cfg.train.batch_size) == ("sgd", 0.1, 0.0, "cosine", 128)
    assert cfg.forget.name == forget and cfg.forget.fraction == 0.1
    if classes:
        assert list(cfg.forget.classes) == classes and cfg.forget.relative_to == "train"
    assert (cfg.method.name, cfg.method.lr, cfg.method.epochs, cfg.method.budget) == ("del", 0.015, 30, 0.3)
    # debug=smoke still shrinks the recipe after the preset
    assert cfg.train.epochs == 2 and cfg.train.max_batches == 3


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_runs_under_smoke_on_tiny_files(run_pipeline, tiny_cifar10_root, tiny_svhn_root, name):
    root = tiny_svhn_root if PRESETS[name][0] == "svhn" else tiny_cifar10_root
    # A narrow ResNet-18 and one finetuning epoch keep this a few seconds on 2 CPU cores.
    frame = run_pipeline([f"experiment={name}", f"data_root={root}", "dataset.download=false",
                          "dataset.verify_md5=false", "model.width=4", "method.epochs=1"])
    assert set(frame.experiment) == {name} and set(frame.method) == {"del"}
    forget_size = frame.forget_size.iloc[0]
    assert forget_size == round(0.1 * 100)  # all 100 tiny training images (no validation carve-out, as DEL)
    assert 0.0 <= metric(frame, "forget_acc") <= 1.0
