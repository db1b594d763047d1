"""Every experiment preset and every registered evaluator, found by themselves (no hand-kept lists)."""

from pathlib import Path

import pytest

from conftest import metric
from datafiles import write_cifar10, write_cifar100, write_mnist_like, write_svhn
from unlearnbench.config import compose, config_dir
from unlearnbench.evaluators.base import metric_info
from unlearnbench.plan import plan
from unlearnbench.registry import EVALUATORS

EXPERIMENTS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))
# Tiny files in each torchvision dataset's real on-disk layout, so every preset runs offline.
TINY_DATA = {
    "cifar10": lambda root: write_cifar10(root),
    "cifar100": lambda root: write_cifar100(root, n_train=300, n_test=100),
    "svhn": lambda root: write_svhn(root),
    "fashion_mnist": lambda root: write_mnist_like(root, "FashionMNIST"),
    "mnist": lambda root: write_mnist_like(root, "MNIST"),
}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_preset_composes_and_validates(run_cfg, name):
    cfg = run_cfg([f"experiment={name}"])
    assert cfg.experiment_name == name, (
        f"set `experiment_name: {name}` in conf/experiment/{name}.yaml (an identity column of metrics.csv)")
    p = plan(cfg)  # every group built and checked, no data loaded
    assert p.experiment == name


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_preset_runs_on_tiny_files(run_pipeline, tmp_path, name):
    cfg = compose([f"experiment={name}"])
    dataset = cfg.dataset.name
    assert dataset in TINY_DATA, f"add a tiny '{dataset}' writer to TINY_DATA in tests/test_presets.py"
    root = TINY_DATA[dataset](tmp_path / "data")
    # a preset pinning the paper's absolute forget-set size (SalUn's 4,500) cannot fit tiny files
    tiny_count = ["forget.count=10"] if cfg.forget.get("count") else []
    frame = run_pipeline([f"experiment={name}", f"data_root={root}", "dataset.download=false",
                          "dataset.verify_md5=false", "train.batch_size=16", *tiny_count])
    assert set(frame.experiment) == {name}
    assert 0.0 <= metric(frame, "test_acc") <= 1.0


def _with_requirements(name: str) -> list:
    """``name`` preceded by the evaluators whose metrics it reads (``Evaluator.requires``)."""
    out = []
    for dep in EVALUATORS.get(name).requires:
        out += [e for e in _with_requirements(dep) if e not in out]
    return out + [name]


@pytest.mark.parametrize("name", EVALUATORS.names())
def test_every_evaluator_reports_its_declared_metrics(run_pipeline, name):
    evaluators = _with_requirements(name)
    frame = run_pipeline([f"eval.evaluators=[{','.join(evaluators)}]", "method=gradient_ascent"])
    declared = set(EVALUATORS.get(name).metrics)
    assert declared, f"evaluator '{name}' must declare its metrics (Evaluator.metrics)"
    reported = set(frame[frame.role == "unlearned"].metric)
    assert declared <= reported, f"evaluator '{name}' declares {sorted(declared - reported)} but did not report them"
    for m in declared:
        info = metric_info()[m]
        assert info.definition, f"give metric '{m}' a one-line definition in {name}'s Metric(...)"
    assert frame[frame.metric.isin(declared)].value.notna().all()
