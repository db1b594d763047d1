"""Sweeps through the real command: resume after SIGKILL, joblib and submitit launchers.

Every sweep here is compared with one serial (basic launcher) reference sweep: the same
run dirs must appear and hold the same metric values (timings excepted).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from conftest import models_in
from unlearnbench.cache import ModelCache

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["debug=smoke", "device=cpu", "hydra/job_logging=disabled"]
TIMING_METRICS = {"rte_s", "speedup_vs_retrain"}  # wall-clock: differ between any two runs
KEYS = ["dataset", "model", "forget", "method", "seed", "role", "metric"]

# Runs the command in-process like `python -m unlearnbench`, but SIGKILLs itself at the
# 2nd optimizer step of sweep job number $KILL_JOB: a crash in the middle of training.
KILLER = textwrap.dedent("""
    import os, runpy, signal, sys
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    steps = 0

    def kill_mid_training(optimizer, args, kwargs):
        global steps
        from hydra.core.hydra_config import HydraConfig
        if HydraConfig.get().job.num == int(os.environ["KILL_JOB"]):
            steps += 1
            if steps == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    register_optimizer_step_pre_hook(kill_mid_training)
    sys.argv = ["unlearnbench", *sys.argv[1:]]
    runpy.run_module("unlearnbench", run_name="__main__")
""")


def unlearnbench(*args: str, killer_job: int = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "1"}
    cmd = [sys.executable, "-m", "unlearnbench"]
    if killer_job is not None:
        env["KILL_JOB"] = str(killer_job)
        cmd = [sys.executable, "-c", KILLER]
    proc = subprocess.run([*cmd, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def results(root: Path) -> pd.DataFrame:
    """Metric values of every finished run under root, indexed by the run's identity."""
    files = sorted((root / "runs").rglob("metrics.csv"))
    frame = pd.concat([pd.read_csv(f).assign(run_dir=str(f.parent.relative_to(root))) for f in files])
    frame = frame[~frame.metric.isin(TIMING_METRICS)]
    return frame.set_index(KEYS + ["run_dir"])["value"].sort_index()


def run_dirs(root: Path):
    return sorted(str(p.parent.relative_to(root)) for p in (root / "runs").rglob("metrics.csv"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A serial sweep: 4 methods x 2 seeds on smoke digits."""
    root = tmp_path_factory.mktemp("serial")
    unlearnbench("-m", *SMOKE, f"output_root={root}",
                 "method=finetune,gradient_ascent,negrad_plus,retrain", "seed=0,1")
    assert len(run_dirs(root)) == 8
    return root


def assert_matches_reference(root: Path, reference: Path, rtol: float = 0.0) -> None:
    """Same run dirs and metric values. Parallel workers get fewer torch threads each, and
    a different float32 summation order moves losses in the 7th digit, hence ``rtol``."""
    got, want = results(root), results(reference)
    want = want[want.index.isin(got.index)]
    assert len(got) == len(want) > 0  # same run dirs, same metrics
    pd.testing.assert_series_equal(got, want, rtol=rtol, atol=0)


@pytest.mark.slow
def test_sigkilled_sweep_resumes_only_missing_runs_with_identical_values(tmp_path, reference):
    sweep = ["-m", *SMOKE, f"output_root={tmp_path}", "method=finetune,gradient_ascent", "seed=0,1"]
    # Job order: (finetune,0) (finetune,1) (gradient_ascent,0) (gradient_ascent,1).
    # Job 1 needs a new original (seed 1): it dies while training it.
    killed = unlearnbench(*sweep, killer_job=1, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert len(run_dirs(tmp_path)) == 1  # only job 0 finished
    started = [p.parent for p in (tmp_path / "runs").rglob("forget_indices.npy")]
    assert len(started) == 2  # job 1 had begun: its dir exists, without metrics.csv
    cache = ModelCache(tmp_path / "cache")
    assert sorted(e.stage for e in models_in(cache)) == ["oracle", "original"]  # seed 0 only
    assert all(e.meta["material"]["seed"] == 0 for e in models_in(cache))

    finished = next((tmp_path / "runs").rglob("metrics.csv"))
    stamp = finished.stat().st_mtime_ns
    unlearnbench(*sweep)
    assert finished.stat().st_mtime_ns == stamp  # the finished run was skipped, not redone
    assert len(run_dirs(tmp_path)) == 4
    assert_matches_reference(tmp_path, reference)


@pytest.mark.slow
def test_joblib_two_workers_run_a_two_method_sweep(tmp_path, reference):
    unlearnbench("-m", *SMOKE, f"output_root={tmp_path}", "hydra/launcher=parallel",
                 "hydra.launcher.n_jobs=2", "method=finetune,gradient_ascent")
    assert len(run_dirs(tmp_path)) == 2
    assert_matches_reference(tmp_path, reference, rtol=1e-5)


@pytest.mark.slow
def test_four_joblib_workers_racing_on_an_empty_cache_train_each_model_once(tmp_path, reference):
    unlearnbench("-m", *SMOKE, f"output_root={tmp_path}", "hydra/launcher=parallel",
                 "hydra.launcher.n_jobs=4", "method=finetune,gradient_ascent,negrad_plus,retrain")
    cache = ModelCache(tmp_path / "cache")
    assert sorted(e.stage for e in models_in(cache)) == ["oracle", "original"]
    assert cache.stale_tmp() == []
    assert len(run_dirs(tmp_path)) == 4
    assert_matches_reference(tmp_path, reference, rtol=1e-5)


@pytest.mark.slow
def test_submitit_local_runs_a_sweep_into_the_same_run_dirs(tmp_path, reference):
    unlearnbench("-m", *SMOKE, f"output_root={tmp_path}", "hydra/launcher=submitit_local",
                 "hydra.launcher.timeout_min=10", "method=finetune,retrain")
    assert len(run_dirs(tmp_path)) == 2
    assert_matches_reference(tmp_path, reference, rtol=1e-5)


def test_launcher_presets_compose_with_our_run_dirs():
    from unlearnbench.config import compose

    cfg = compose(["hydra/launcher=parallel"], return_hydra_config=True)
    assert cfg.hydra.launcher.n_jobs == 4 and "JoblibLauncher" in cfg.hydra.launcher._target_
    cfg = compose(["hydra/launcher=slurm", "output_root=/shared/ub"], return_hydra_config=True)
    assert "SlurmLauncher" in cfg.hydra.launcher._target_ and cfg.hydra.launcher.gpus_per_node == 1
    assert cfg.hydra.sweep.dir == "/shared/ub/runs"


def test_a_swept_groups_keys_become_per_job_sweeps():
    from unlearnbench.command import per_job_group_keys

    args = ["-m", "method=topk,randomk", "method.repair_epochs=0", "method.x=[1,2]", "method.lr=0.1,0.2",
            "+method.y=3", "seed=0,1", "train.lr=0.1"]
    assert per_job_group_keys(args) == [
        "-m", "method=topk,randomk", "method.repair_epochs=choice(0)", "method.x=choice([1,2])",
        "method.lr=0.1,0.2", "+method.y=3", "seed=0,1", "train.lr=0.1"]
    single = ["method=topk", "method.repair_epochs=0"]
    assert per_job_group_keys(single) == single                    # no sweep: as typed
    assert per_job_group_keys(["-m", *single]) == ["-m", *single]  # method not swept


def test_sweep_over_methods_with_a_key_the_default_method_lacks(tmp_path):
    """Hydra alone stops this sweep before its first job ("Key 'repair_epochs' is not in
    struct": finetune, the default method, has no such key)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "unlearnbench", "-m", "debug=smoke", "device=cpu",
                           "method=topk,randomk", "method.repair_epochs=0", f"output_root={tmp_path}",
                           "progress=false"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    configs = sorted(tmp_path.glob("runs/*/*/*/*/seed0/.hydra/config.yaml"))
    assert len(configs) == 2 and all("repair_epochs: 0" in c.read_text() for c in configs)
