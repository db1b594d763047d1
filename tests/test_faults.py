"""Fault injection: a hostile or careless user's inputs, damaged files, killed and concurrent
runs. Each test fails if the protection it names breaks. docs/reliability.md lists the cases.

Fast tests stop before training (bad values, bad data) or run one smoke pipeline; the ones
that start the command several times or kill processes are marked slow.
"""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import models_in
from datafiles import write_cifar10, write_mnist_like, write_npz
from unlearnbench.cache import MARKER, CorruptEntry, ModelCache, content_key
from unlearnbench.cache_cli import main as cache_main
from unlearnbench.reports.load import load_runs
from unlearnbench.data import load_data
from unlearnbench.errors import ConfigError, DataError, Diverged
from unlearnbench.pipeline import run
from unlearnbench.results import Damaged, finished, read_checked, record_path

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
OFFLINE = {"download": False, "verify_md5": False}


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if a model starts training (bad input must stop earlier)."""
    import unlearnbench.pipeline as pipeline

    def boom(*args, **kwargs):
        raise AssertionError("training started before the input was refused")

    monkeypatch.setattr(pipeline, "train_stage", boom)


@pytest.fixture
def no_data(monkeypatch):
    import unlearnbench.pipeline as pipeline

    def boom(*args, **kwargs):
        raise AssertionError("data loading started before the config was refused")

    monkeypatch.setattr(pipeline, "load_stage", boom)


def command(*args: str, cwd: Path = ROOT, code: str = None, env=None) -> subprocess.CompletedProcess:
    """``python -m unlearnbench ARGS`` (or ``python -c CODE ARGS``) with this tree first."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "unlearnbench"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


# ----------------------------------------------------------------------- bad values

@pytest.mark.parametrize("override,key", [
    ("method.lr=nan", "method.lr"),
    ("method.lr=inf", "method.lr"),
    ("train.lr=nan", "train.lr"),
    ("train.lr=-0.1", "train.lr"),
    ("train.momentum=1.5", "train.momentum"),
    ("train.weight_decay=-1", "train.weight_decay"),
    ("train.max_batches=0", "train.max_batches"),
    ("train.label_smoothing=2", "train.label_smoothing"),
    ("train.amp=fp8", "train.amp"),
    ("method.batch_size=0", "method.batch_size"),
    ("seed=-1", "seed"),
    ("dataset.split_seed=-3", "dataset.split_seed"),
    ("forget.seed=-2", "forget.seed"),
])
def test_bad_values_are_refused_before_data_loads(run_cfg, no_data, override, key):
    with pytest.raises(ConfigError) as err:
        run(run_cfg([override]))
    assert f"`{key}`" in str(err.value)


@pytest.mark.parametrize("override,key", [("model.hidden=[64,0]", "model.hidden"),
                                          ("model.dropout=1.0", "model.dropout")])
def test_degenerate_models_are_refused_before_training(run_cfg, no_training, override, key):
    with pytest.raises(ConfigError, match=f"`{key}`"):
        run(run_cfg([override]))


def test_unwritable_cache_dir_is_refused_before_data_loads(run_cfg, no_data, tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match="`cache_dir`.*cannot write"):
        run(run_cfg([f"cache_dir={tmp_path / 'a_file' / 'cache'}"]))


def test_unsafe_group_name_stays_inside_output_root(tmp_path):
    proc = command("debug=smoke", "device=cpu", f"output_root={tmp_path / 'out'}",
                   "method.name=../../escape", "hydra/job_logging=disabled", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "`method.name`" in proc.stderr
    outside = [p for p in tmp_path.rglob("*escape*") if (tmp_path / "out") not in p.parents]
    assert outside == []


def test_user_error_is_one_line_exit_2_and_in_the_run_log(tmp_path):
    proc = command("debug=smoke", "device=cpu", f"output_root={tmp_path}", "train.momentum=7")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("unlearnbench: error:")]
    assert len(errors) == 1 and "`train.momentum`" in errors[0]
    logs = list((tmp_path / "runs").rglob("unlearnbench.log"))
    assert len(logs) == 1 and "`train.momentum`" in logs[0].read_text()


# ----------------------------------------------------------------------- divergence

def test_diverged_method_writes_no_metrics_and_names_its_lr(run_cfg, tmp_path):
    cfg = run_cfg(["method=gradient_ascent", "method.lr=1e6", "method.epochs=3"])
    with pytest.raises(Diverged, match=r"method diverged \(non-finite values in .*lower `method.lr`"):
        run(cfg)
    assert not (tmp_path / "run" / "metrics.csv").exists()
    for entry in ModelCache(tmp_path / "cache").entries():  # the references it used are fine
        assert all(torch.isfinite(v).all() for v in torch.load(entry.path / "model.pt").values())


def test_diverged_training_is_never_cached(run_cfg, tmp_path):
    with pytest.raises(Diverged, match=r"original training diverged .*lower `train.lr`"):
        run(run_cfg(["train.lr=1e9", "train.momentum=0.99"]))
    assert list(ModelCache(tmp_path / "cache").entries()) == []
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_nan_cache_entry_and_wrong_shapes_are_rebuilt_not_loaded(tmp_path):
    cache, material = ModelCache(tmp_path), {"seed": 0}
    key = content_key(material)
    cache.save("original", key, {"w": torch.full((2,), float("nan"))}, {"train_s": 1.0})  # valid checksum

    def accept(state):
        if not torch.isfinite(state["w"]).all() or state["w"].shape != (3,):
            raise CorruptEntry("unusable")

    state, _, hit = cache.get_or_build("original", material, CPU,
                                       lambda: ({"w": torch.ones(3)}, {"train_s": 1.0}), accept)
    assert not hit and torch.equal(state["w"], torch.ones(3))
    state, _, hit = cache.get_or_build("original", material, CPU, lambda: 1 / 0, accept)
    assert hit and torch.equal(state["w"], torch.ones(3))


@pytest.mark.slow
def test_a_diverging_job_does_not_stop_the_sweep(tmp_path):
    proc = command("-m", "debug=smoke", "device=cpu", f"output_root={tmp_path}",
                   "method=gradient_ascent", "method.epochs=3", "method.lr=1e6,0.01",
                   "hydra/job_logging=disabled")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(list((tmp_path / "runs").rglob("metrics.csv"))) == 1  # the lr=0.01 job ran
    assert "lower `method.lr`" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_failing_job_in_joblib_workers_is_counted_by_the_parent(tmp_path):
    proc = command("-m", "debug=smoke", "device=cpu", f"output_root={tmp_path}",
                   "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "train.momentum=0.9,5",
                   "hydra/job_logging=disabled")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(list((tmp_path / "runs").rglob("metrics.csv"))) == 1
    assert "unlearnbench: error:" in proc.stderr and "`train.momentum`" in proc.stderr


# ----------------------------------------------------------------------- bad data

def _npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _x(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 6)).astype(np.float32)


NPZ_CASES = {
    "more_images_than_labels": (lambda: dict(x=_x(200), y=np.arange(150) % 3), "dataset.path", "150 labels"),
    "float_labels": (lambda: dict(x=_x(60), y=np.arange(60) % 3 + 0.5), "dataset.path", "integer"),
    "one_class": (lambda: dict(x=_x(60), y=np.zeros(60, int)), "dataset.name", "single class"),
    "three_rows": (lambda: dict(x=_x(3), y=np.array([0, 1, 2])), "dataset.", "split empty"),
    "stray_label_500": (lambda: dict(x=_x(60), y=np.r_[np.arange(59) % 3, 500]), "dataset.num_classes", "500"),
    "nan_pixels": (lambda: dict(x=np.where(np.eye(60, 6) > 0, np.nan, _x(60)), y=np.arange(60) % 3),
                   "dataset.path", "NaN"),
    "negative_label": (lambda: dict(x=_x(60), y=np.arange(60) % 3 - 1), "dataset.path", "negative"),
    "x_test_without_y_test": (lambda: dict(x=_x(60), y=np.arange(60) % 3, x_test=_x(10)), "dataset.path", "y_test"),
}


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_bad_npz_is_refused_before_training(run_cfg, no_training, tmp_path, case):
    arrays, key, words = NPZ_CASES[case]
    path = _npz(tmp_path / f"{case}.npz", **arrays())
    with pytest.raises(ConfigError) as err:
        run(run_cfg(["dataset=npz", f"dataset.path={path}", "dataset.limit_train=null",
                     "dataset.limit_test=null"]))
    assert f"`{key}" in str(err.value) and words in str(err.value)


def test_crafted_cifar_pickle_runs_nothing(tmp_path):
    root = write_cifar10(tmp_path / "data")
    canary = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {canary}",))

    with open(root / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump({"data": Payload(), "labels": [0]}, f, protocol=2)
    with pytest.raises(DataError, match=r"`data_root`.*data_batch_1.*nothing in it was run"):
        load_data({"name": "cifar10", **OFFLINE}, str(root), CPU)
    assert not canary.exists()


def test_damaged_dataset_file_is_reported_as_damaged_not_missing(tmp_path):
    root = write_mnist_like(tmp_path, "FashionMNIST")
    images = root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])  # truncated
    with pytest.raises(DataError, match="damaged"):
        load_data({"name": "fashion_mnist", **OFFLINE}, str(root), CPU)


# ----------------------------------------------------------------------- metrics.csv

@pytest.fixture
def finished_run(run_cfg, tmp_path):
    result = run(run_cfg(["method=finetune"]))
    return result.run_dir / "metrics.csv"


def test_tampered_metrics_are_rerun_never_skipped(run_cfg, finished_run, caplog):
    text = finished_run.read_text()
    assert run(run_cfg(["method=finetune"])).skipped  # intact: skipped
    value = read_checked(finished_run).set_index(["role", "metric"]).value
    finished_run.write_text(text.replace(",forget_acc,", ",forget_acc,1", 1))  # one digit added
    with pytest.raises(Damaged, match="does not match its sha256"):
        read_checked(finished_run)
    with pytest.raises(SystemExit, match="does not match its sha256"):  # compare refuses it too
        load_runs([str(finished_run.parent)])
    again = run(run_cfg(["method=finetune"]))
    assert not again.skipped and "running it again" in caplog.text
    redone = read_checked(finished_run).set_index(["role", "metric"]).value
    assert redone["unlearned", "forget_acc"] == value["unlearned", "forget_acc"]

    finished_run.write_text(text[: len(text) // 2])  # truncated
    assert not finished(finished_run.parent)
    record_path(finished_run).unlink()  # a file with no record at all
    assert not finished(finished_run.parent)


def test_range_and_role_checks_catch_what_a_record_cannot(tmp_path, finished_run):
    frame = pd.read_csv(finished_run)
    assert len(load_runs([str(finished_run)])) == len(frame)  # intact: compare reads it
    for name, broken in {"range": frame.assign(value=frame.value.where(frame.metric != "test_acc", 1.9)),
                         "role": frame.assign(role=frame.role.replace("retrain", "oracle")),
                         "column": frame.drop(columns=["metric"])}.items():
        path = tmp_path / name / "metrics.csv"
        path.parent.mkdir()
        broken.to_csv(path, index=False)
        with pytest.raises(Damaged):
            read_checked(path)
        with pytest.raises(SystemExit, match=name if name != "range" else "outside its range"):
            load_runs([str(path)])


# ----------------------------------------------------------------------- cache clear

def test_cache_clear_on_a_project_folder_deletes_nothing(tmp_path):
    project = tmp_path / "project"
    (project / "src" / "module").mkdir(parents=True)
    (project / "src" / "module" / "meta.json").write_text(json.dumps({"sha256": "x"}))
    (project / "src" / "module" / "model.pt").write_text("mine")
    with pytest.raises(SystemExit, match="not an unlearnbench cache"):
        cache_main(["clear", "--cache-dir", str(project), "--yes"])
    assert (project / "src" / "module" / "model.pt").read_text() == "mine"


def test_cache_clear_inside_a_real_cache_only_takes_entries(tmp_path):
    cache = ModelCache(tmp_path)
    cache.get_or_build("oracle", {"seed": 0}, CPU, lambda: ({"w": torch.ones(2)}, {"train_s": 1.0}))
    assert (tmp_path / MARKER).exists()
    lookalike = tmp_path / "notes" / "drafts"  # user files that happen to look like an entry
    lookalike.mkdir(parents=True)
    (lookalike / "meta.json").write_text(json.dumps({"key": "drafts", "stage": "notes"}))
    cache_main(["clear", "--cache-dir", str(tmp_path), "--yes"])
    assert list(cache.entries()) == [] and (lookalike / "meta.json").exists()


# ----------------------------------------------------------------------- the CUDA path on a CPU

def test_pipeline_runs_with_bf16_autocast_and_channels_last_on_cpu(run_pipeline, monkeypatch):
    seen = set()

    def record(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            seen.add((output.dtype, inputs[0].is_contiguous(memory_format=torch.channels_last)))

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        frame = run_pipeline(["model=cnn", "model.width=8", "dataset.limit_train=200", "train.amp=bf16",
                              "train.channels_last=true"])
    finally:
        handle.remove()
    assert (torch.bfloat16, True) in seen  # the CUDA path's dtype and layout really ran
    assert np.isfinite(frame.value[frame.metric.str.endswith("_acc")]).all()


# ----------------------------------------------------------------------- killed and concurrent runs

KILL_AT_STEP = textwrap.dedent("""
    import os, runpy, signal, sys
    from torch.optim.optimizer import register_optimizer_step_pre_hook
    steps = 0
    def kill(optimizer, args, kwargs):
        global steps
        steps += 1
        if steps == int(os.environ["KILL_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)
    register_optimizer_step_pre_hook(kill)
    sys.argv = ["unlearnbench", *sys.argv[1:]]
    runpy.run_module("unlearnbench", run_name="__main__")
""")


@pytest.mark.slow
def test_kill_9_during_original_training_then_rerun_finishes(tmp_path):
    args = ["debug=smoke", "device=cpu", f"output_root={tmp_path}", "hydra/job_logging=disabled"]
    killed = command(*args, code=KILL_AT_STEP, env={"KILL_STEP": "3"})  # mid original training
    assert killed.returncode == -signal.SIGKILL
    assert list((tmp_path / "runs").rglob("metrics.csv")) == []
    assert list(ModelCache(tmp_path / "cache").entries()) == []  # nothing half-written counts
    assert command(*args).returncode == 0
    (csv,) = list((tmp_path / "runs").rglob("metrics.csv"))
    assert finished(csv.parent) and len(models_in(ModelCache(tmp_path / "cache"))) == 2


@pytest.mark.slow
def test_kill_9_during_a_sweep_then_rerun_completes_it(tmp_path):
    args = ["-m", "debug=smoke", "device=cpu", f"output_root={tmp_path}", "seed=0,1",
            "hydra/job_logging=disabled"]
    killed = command(*args, code=KILL_AT_STEP, env={"KILL_STEP": "25"})  # 2nd job (21 steps each), its original
    assert killed.returncode == -signal.SIGKILL
    assert len(list((tmp_path / "runs").rglob("metrics.csv"))) == 1
    assert command(*args).returncode == 0
    assert all(finished(p.parent) for p in (tmp_path / "runs").rglob("metrics.csv"))
    assert len(list((tmp_path / "runs").rglob("metrics.csv"))) == 2


@pytest.mark.slow
def test_two_processes_running_the_same_run_agree(tmp_path):
    args = ["debug=smoke", "device=cpu", f"output_root={tmp_path}", "hydra/job_logging=disabled"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "unlearnbench", *args], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    (csv,) = list((tmp_path / "runs").rglob("metrics.csv"))
    assert finished(csv.parent)
    cache = ModelCache(tmp_path / "cache")
    assert sorted(e.stage for e in models_in(cache)) == ["oracle", "original"]  # each trained once
