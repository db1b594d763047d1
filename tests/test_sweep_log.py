"""Progress bars only on a terminal, and a sweep's one line per finished job."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unlearnbench.errors import ConfigError
from unlearnbench.plan import progress_on
from unlearnbench.sweep_log import job_line, unlearned_metrics


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_progress_auto_follows_the_terminal(monkeypatch, tty):
    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    assert progress_on("auto") is tty
    assert progress_on(True) is True and progress_on("false") is False


def test_progress_refuses_other_values():
    with pytest.raises(ConfigError, match="`progress`"):
        progress_on("maybe")


def test_job_line_metrics_or_status(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("role,metric,value\noriginal,forget_acc,0.9\nunlearned,forget_acc,0.12\n"
                   "unlearned,test_acc,0.95\nunlearned,val_acc,0.5\n")
    overrides = ["method=finetune", "seed=1", "output_root=/x", "debug=smoke"]
    assert job_line(3, overrides, unlearned_metrics(csv), "completed", 41.23) == (
        "[job 3] method=finetune seed=1: forget_acc 0.120 test_acc 0.950 (41.2 s)")
    assert job_line(4, ["seed=2"], unlearned_metrics(tmp_path / "none.csv"), "failed", None) == (
        "[job 4] seed=2: failed")


def test_sweep_logs_each_job_and_draws_no_bars_off_a_terminal(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "unlearnbench", "-m", "method=finetune,gradient_ascent",
           "debug=smoke", "progress=auto", "device=cpu", f"output_root={tmp_path / 'out'}",
           f"hydra.sweep.dir={tmp_path / 'out' / 'runs'}"]
    with open(tmp_path / "stderr.txt", "w") as err:
        done = subprocess.run(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=err,
                              text=True, timeout=300)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert done.returncode == 0, stderr[-3000:]
    assert "it/s" not in stderr and "\r" not in stderr
    lines = [ln for ln in (done.stdout + stderr).splitlines() if "[job " in ln]
    assert len(lines) == 2, lines
    assert "method=finetune: forget_acc " in lines[0] and "test_acc " in lines[0]
    assert "method=gradient_ascent: forget_acc " in lines[1]
