"""Sweeps on a real SLURM cluster (`make test-slurm` starts a one-node one first).

Skipped unless `sbatch` is installed and the controller answers. The jobs use the
cluster's default partition, no GPU, one CPU and 2 GiB each, and find this checkout
through `hydra.launcher.setup` (the array tasks run the driver's Python interpreter).
"""

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from test_sweeps import ROOT, SMOKE, assert_matches_reference, run_dirs, unlearnbench
from unlearnbench.cache import ModelCache


def cluster_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(not cluster_answers(), reason="no SLURM cluster answers (make test-slurm)")]

SLURM = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=15",
         f"hydra.launcher.setup=['export PYTHONPATH={shlex.quote(str(ROOT))}']"]
QUIET = ("sacct", "accounting storage", "Bypassing")  # what submitit printed on every poll before


def cache_hits(root: Path) -> pd.DataFrame:
    """One row per run: method, seed and whether its original/oracle came from the cache."""
    cols = ["method", "seed", "original_cache_hit", "oracle_cache_hit"]
    frames = [pd.read_csv(f)[cols].iloc[:1] for f in sorted((root / "runs").rglob("metrics.csv"))]
    return pd.concat(frames).sort_values(["seed", "method"]).reset_index(drop=True)


def test_array_sweep_trains_each_original_and_oracle_once_and_matches_the_basic_launcher(tmp_path):
    sweep = ["-m", *SMOKE, "method=finetune,gradient_ascent", "seed=0,1"]
    proc = unlearnbench(*sweep, f"output_root={tmp_path / 'slurm'}", *SLURM,
                        "hydra.launcher.array_parallelism=2")
    log = proc.stdout + proc.stderr
    assert not [word for word in QUIET if word in log], log[-3000:]
    unlearnbench(*sweep, f"output_root={tmp_path / 'basic'}")

    hits = cache_hits(tmp_path / "slurm")
    print(hits.to_string(index=False))
    assert len(hits) == 4
    for stage in ("original", "oracle"):
        trained = (~hits[f"{stage}_cache_hit"]).groupby(hits.seed).sum()
        assert trained.to_dict() == {0: 1, 1: 1}, f"{stage} trained per seed: {trained.to_dict()}"
    entries = ModelCache(tmp_path / "slurm" / "cache").entries()
    assert sorted(e.stage for e in entries) == ["oracle", "oracle", "original", "original"]
    assert run_dirs(tmp_path / "slurm") == run_dirs(tmp_path / "basic")
    assert_matches_reference(tmp_path / "slurm", tmp_path / "basic")


def started_run(root: Path, epochs: int, timeout_s: float) -> Path:
    """The run dir of the job training for `epochs` epochs, once it has begun training."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for indices in (root / "runs").rglob("forget_indices.npy"):  # saved just before training
            if OmegaConf.load(indices.parent / ".hydra/config.yaml").train.epochs == epochs:
                return indices.parent
        time.sleep(0.2)
    raise AssertionError(f"no run with train.epochs={epochs} started within {timeout_s} s")


def test_cancelled_array_task_is_redone_by_rerunning_and_only_it(tmp_path):
    # Three array tasks, the last one slow (300 full epochs on digits: seconds, not minutes).
    sweep = ["-m", *SMOKE, f"output_root={tmp_path}", *SLURM, "hydra.launcher.array_parallelism=2",
             "train.max_batches=null", "train.epochs=2,3,300"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "1"}
    driver = subprocess.Popen([sys.executable, "-m", "unlearnbench", *sweep], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    slow = started_run(tmp_path, epochs=300, timeout_s=300)
    job_id = OmegaConf.load(slow / ".hydra/hydra.yaml").hydra.job.id  # "<array job>_<task>"
    subprocess.run(["scancel", job_id], check=True)
    log, _ = driver.communicate(timeout=300)

    assert driver.returncode != 0
    assert f"{job_id}" in log and "CANCELLED" in log, log[-3000:]
    finished = sorted((tmp_path / "runs").rglob("metrics.csv"))
    assert len(finished) == 2 and slow not in [f.parent for f in finished]  # the others ran to the end
    cache = ModelCache(tmp_path / "cache")
    assert all(e.meta["material"]["recipe"]["epochs"] != 300 for e in cache.entries())  # killed mid-training
    stamps = {f: f.stat().st_mtime_ns for f in finished}

    unlearnbench(*sweep)
    assert {f: f.stat().st_mtime_ns for f in finished} == stamps  # finished runs skipped, not redone
    assert (slow / "metrics.csv").exists()
    assert len(run_dirs(tmp_path)) == 3
    assert cache.stale_tmp() == []


def test_a_failing_job_reports_its_reason_and_the_others_finish(tmp_path):
    # Job 0 fails at validation; the command waits for job 1, then names the key to fix.
    proc = unlearnbench("-m", *SMOKE, f"output_root={tmp_path}", *SLURM, "forget.fraction=1.5,0.1",
                        check=False)
    assert proc.returncode != 0
    assert "Invalid config `forget.fraction`: must be strictly between 0 and 1, got 1.5" in proc.stderr
    assert len(run_dirs(tmp_path)) == 1
    assert not [word for word in QUIET if word in proc.stdout + proc.stderr]
