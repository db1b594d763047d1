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
import textwrap
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


# Loaded by the array tasks through PYTHONPATH (sitecustomize runs at interpreter start):
# sweep job $HOLD_JOB stops at its 2nd optimizer step, says so, and waits while $HOLD_FILE
# exists. The test cancels it there, mid-training, whatever the machine's speed.
HOLD = textwrap.dedent("""
    import os, pathlib, time
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    steps = 0

    def hold_mid_training(optimizer, args, kwargs):
        global steps
        from hydra.core.hydra_config import HydraConfig
        hold = pathlib.Path(os.environ["HOLD_FILE"])
        if not hold.exists() or HydraConfig.get().job.num != int(os.environ["HOLD_JOB"]):
            return
        steps += 1
        if steps == 2:
            hold.with_suffix(".training").write_text(HydraConfig.get().job.id)  # "<array job>_<task>"
            while hold.exists():
                time.sleep(0.1)

    register_optimizer_step_pre_hook(hold_mid_training)
""")


def wait_for(path: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout_s} s"
        time.sleep(0.2)
    return path.read_text()


def test_cancelled_array_task_is_redone_by_rerunning_and_only_it(tmp_path):
    hook, hold = tmp_path / "hook", tmp_path / "hold"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD)
    hold.touch()
    setup = [f"export PYTHONPATH={shlex.quote(f'{hook}:{ROOT}')}", "export HOLD_JOB=1",
             f"export HOLD_FILE={shlex.quote(str(hold))}"]
    # Three seeds, three originals; task 1 is held while it trains its original.
    sweep = ["-m", *SMOKE, f"output_root={tmp_path / 'out'}", *SLURM[:-1],
             f"hydra.launcher.setup=[{','.join(repr(line) for line in setup)}]",
             "hydra.launcher.array_parallelism=2", "method=finetune", "seed=0,1,2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "1"}
    driver = subprocess.Popen([sys.executable, "-m", "unlearnbench", *sweep], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    job_id = wait_for(hold.with_suffix(".training"), timeout_s=300)
    subprocess.run(["scancel", job_id], check=True)
    log, _ = driver.communicate(timeout=300)

    assert driver.returncode != 0
    assert job_id in log and "CANCELLED" in log, log[-3000:]
    finished = sorted((tmp_path / "out" / "runs").rglob("metrics.csv"))
    assert [f.parts[-2] for f in finished] == ["seed0", "seed2"]  # the others ran to the end
    cache = ModelCache(tmp_path / "out" / "cache")
    assert sorted(e.meta["material"]["seed"] for e in cache.entries() if e.stage == "original") == [0, 2]
    stamps = {f: f.stat().st_mtime_ns for f in finished}

    hold.unlink()  # the same command again, now without the hold
    unlearnbench(*sweep)
    assert {f: f.stat().st_mtime_ns for f in finished} == stamps  # finished runs skipped, not redone
    assert [p.split("/")[-1] for p in run_dirs(tmp_path / "out")] == ["seed0", "seed1", "seed2"]
    assert cache.stale_tmp() == []


def test_a_failing_job_reports_its_reason_and_the_others_finish(tmp_path):
    # Job 0 fails at validation; the command waits for job 1, then names the key to fix.
    proc = unlearnbench("-m", *SMOKE, f"output_root={tmp_path}", *SLURM, "forget.fraction=1.5,0.1",
                        check=False)
    assert proc.returncode != 0
    assert "Invalid config `forget.fraction`: must be strictly between 0 and 1, got 1.5" in proc.stderr
    assert len(run_dirs(tmp_path)) == 1
    assert not [word for word in QUIET if word in proc.stdout + proc.stderr]
