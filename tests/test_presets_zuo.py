"""The Zuo / Lightweight reconstruction presets compose and run end to end (debug=smoke).

No real CIFAR-10 or Fashion-MNIST is available offline, so the runs read tiny files written in
the real on-disk formats (torchvision's cifar-10-batches-py pickles and FashionMNIST idx).
"""

from pathlib import Path

import pytest

from datafiles import write_cifar10, write_mnist_like
from unlearnbench.config import compose

PRESETS = {
    "zuo_cifar10_topk": ("cifar10", "resnet18", "topk"),
    "zuo_cifar10_randomk": ("cifar10", "resnet18", "randomk"),
    "zuo_fashion_mnist_topk": ("fashion_mnist", "cnn", "topk"),
    "lightweight_cifar10": ("cifar10", "resnet18", "lightweight"),
    "lightweight_fashion_mnist": ("fashion_mnist", "cnn", "lightweight"),
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_composes_with_the_reconstruction_recipe(preset):
    dataset, model, method = PRESETS[preset]
    cfg = compose([f"experiment={preset}"])
    assert (cfg.dataset.name, cfg.model.name, cfg.method.name) == (dataset, model, method)
    assert cfg.experiment_name == preset and cfg.forget.name == "random" and cfg.forget.fraction == 0.1
    if dataset == "cifar10":  # the ∇τ CIFAR-10 recipe
        assert cfg.model.stem == "imagenet"
        t = cfg.train
        assert (t.epochs, t.batch_size, t.optimizer, t.lr, t.momentum, t.weight_decay) == \
            (50, 256, "sgd", 0.1, 0.9, 5e-4)
        assert (t.schedule, t.final_lr_fraction, t.augment) == ("linear", 0.01, "crop_flip")
    text = (Path(__file__).parents[1] / "conf" / "experiment" / f"{preset}.yaml").read_text()
    assert "RECONSTRUCTION" in text.splitlines()[1]


# ResNet-18 trains an original and an oracle per run: ~20 s each on a busy 2-core CPU.
RUNS = [pytest.param(p, marks=pytest.mark.slow) if PRESETS[p][0] == "cifar10" else p for p in sorted(PRESETS)]


@pytest.mark.parametrize("preset", RUNS)
def test_preset_runs_under_smoke(preset, run_pipeline, tmp_path):
    dataset, model, method = PRESETS[preset]
    if dataset == "cifar10":
        root = write_cifar10(tmp_path / "tiny_cifar10", per_batch=40)
    else:
        root = write_mnist_like(tmp_path / "tiny_fmnist", "FashionMNIST", n_train=200)
    frame = run_pipeline([f"experiment={preset}", f"data_root={root}", "dataset.download=false",
                          "dataset.verify_md5=false", "train.batch_size=32",
                          *(["method.max_epochs=1"] if method == "lightweight" else [])])
    assert set(frame.experiment) == {preset}
    assert (frame.dataset.iloc[0], frame.model.iloc[0], frame.method.iloc[0]) == (dataset, model, method)
    assert "reconstructed" in frame.method_version.iloc[0]
    assert set(frame.role) == {"original", "retrain", "unlearned"}
