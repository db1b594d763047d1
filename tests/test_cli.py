"""The installed commands, run for real as subprocesses (one Hydra -m sweep, then compare)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd


def _bin(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed; pip install -e . first"
    return found


def test_sweep_then_compare(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    # Run from an unrelated folder: the command must find its packaged configs.
    cmd = [_bin("unlearnbench"), "-m", "method=finetune,gradient_ascent", "seed=0,1",
           "debug=smoke", "device=cpu", f"output_root={tmp_path / 'out'}"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    csvs = sorted((tmp_path / "out" / "runs").rglob("metrics.csv"))
    assert len(csvs) == 4
    assert all((c.parent / ".hydra" / "config.yaml").exists() for c in csvs)
    assert all(list(c.parent.glob("*.log")) for c in csvs)
    frame = pd.concat(map(pd.read_csv, csvs))
    assert set(frame.method) == {"finetune", "gradient_ascent"} and set(frame.seed) == {0, 1}

    table = subprocess.run([_bin("unlearnbench-compare"), str(tmp_path / "out"),
                            "--metrics", "forget_acc,test_acc"],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith("| method | n | forget_acc")
    body = lines[2:]
    assert len(body) == 2 and all("| 2 |" in row for row in body)


def test_help_is_fast_and_lists_groups(tmp_path):
    done = subprocess.run([_bin("unlearnbench"), "--help"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    for group in ("dataset", "method", "forget", "eval", "train", "experiment", "debug"):
        assert group in done.stdout


def test_help_names_the_command_and_shows_examples(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "unlearnbench", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "unlearnbench -m method=finetune,gradient_ascent" in text
    assert "make table-del" in text and "docs/" in text and "install=bash" in text
    assert "method: " in text  # $APP_CONFIG_GROUPS expanded
    assert "__main__" not in text and "powered by hydra" not in text.lower()
