"""Every sweep keeps its multirun.yaml (and command line) in <output_root>/sweeps/<time>-<hash>/."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from unlearnbench.config import compose
from unlearnbench.sweep_record import SweepRecordCallback, sweep_folder

ROOT = Path(__file__).resolve().parents[1]


def test_the_callback_is_in_the_composed_config_and_writes_one_folder_per_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearnbench", "-m", "seed=0,1"])
    callback = None
    for overrides in (["seed=1"], ["method=retrain"]):  # compose takes no sweep lists
        cfg = compose([f"output_root={tmp_path}", *overrides], return_hydra_config=True)
        callback = callback or instantiate(cfg.hydra.callbacks.sweep_record)
        assert isinstance(callback, SweepRecordCallback)
        callback.on_multirun_start(config=cfg)
    folders = sorted((tmp_path / "sweeps").iterdir())
    assert len(folders) == 2
    saved = sorted(tuple(OmegaConf.load(f / "multirun.yaml").hydra.overrides.task) for f in folders)
    assert saved[0][-1] == "method=retrain" and saved[1][-1] == "seed=1"
    assert (folders[0] / "command.txt").read_text() == "unlearnbench -m seed=0,1\n"


def test_the_same_sweep_twice_in_one_second_gets_two_folders(tmp_path):
    a = sweep_folder(tmp_path, ["seed=0,1"], 1_700_000_000.0)
    b = sweep_folder(tmp_path, ["seed=0,1"], 1_700_000_000.0)
    c = sweep_folder(tmp_path, ["seed=0,2"], 1_700_000_000.0)
    assert b.name == a.name + "-2" and len({a, b, c}) == 3 and c.name[:19] == a.name[:19]


@pytest.mark.slow
def test_two_sweeps_leave_two_multirun_yamls_and_the_run_dirs_where_they_were(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "1"}

    def sweep(*args):
        done = subprocess.run([sys.executable, "-m", "unlearnbench", "-m", "debug=smoke", "device=cpu",
                               "hydra/job_logging=disabled", f"output_root={tmp_path}", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    sweep("method=finetune", "seed=0")
    first = next((tmp_path / "runs").rglob("metrics.csv"))
    mtime = first.stat().st_mtime_ns
    sweep("method=finetune,retrain", "seed=0")
    runs = sorted(str(p.parent.relative_to(tmp_path / "runs")) for p in (tmp_path / "runs").rglob("metrics.csv"))
    assert [r.split("/")[:3] for r in runs] == [["digits-mlp", "random", "finetune"],
                                                ["digits-mlp", "random", "retrain"]]
    assert first.stat().st_mtime_ns == mtime  # the finished run was found and skipped
    records = sorted((tmp_path / "sweeps").glob("*/multirun.yaml"))
    tasks = sorted(tuple(OmegaConf.load(f).hydra.overrides.task) for f in records)
    assert len(records) == 2 and tasks[0] != tasks[1]
    latest = OmegaConf.load(tmp_path / "runs" / "multirun.yaml").hydra.overrides.task
    assert "method=finetune,retrain" in latest
