"""Components from outside the package (docs/examples/plugin), through the real command."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "plugin"
COMPONENTS = ["method=shrink", "model=tiny_mlp", "dataset=blobs", "forget=first_n", "eval=mine"]


def _unlearnbench() -> str:
    found = shutil.which("unlearnbench", path=str(Path(sys.executable).parent)) or shutil.which("unlearnbench")
    assert found, "unlearnbench is not installed; pip install -e . first"
    return found


def _run(args, cwd: Path, env=None) -> subprocess.CompletedProcess:
    cmd = [_unlearnbench(), *args, "hydra.searchpath=[file://myconf]", *COMPONENTS, "debug=smoke",
           "device=cpu", "output_root=out"]
    return subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=300)


def _metrics(folder: Path) -> pd.DataFrame:
    csvs = list((folder / "out" / "runs").rglob("metrics.csv"))
    assert len(csvs) == 1
    return pd.read_csv(csvs[0])


@pytest.fixture
def plugin_dir(tmp_path) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "plugin")
    return tmp_path / "plugin"


def test_outside_method_model_dataset_forget_spec_and_evaluator_run_via_plugins_key(plugin_dir):
    done = _run(["plugins=[myplugins]"], plugin_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    frame = _metrics(plugin_dir)
    assert set(frame.method) == {"shrink"} and set(frame.model) == {"tiny_mlp"}
    assert set(frame.dataset) == {"blobs"} and set(frame.forget) == {"first_n(count=20)"}
    unlearned = frame[frame.role == "unlearned"].set_index("metric").value
    assert unlearned["method.factor"] == 0.9
    assert {"forget_acc", "forget_mean_margin"} <= set(unlearned.index)


def test_installed_entry_point_needs_no_plugins_key(plugin_dir, tmp_path):
    # A distribution on the path whose entry point names the module, as `pip install` makes.
    site = tmp_path / "site"
    dist = site / "myplugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[unlearnbench.plugins]\nmyplugins = myplugins\n")
    shutil.move(str(plugin_dir / "myplugins.py"), site / "myplugins.py")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    done = _run([], plugin_dir, env={"PYTHONPATH": path})
    assert done.returncode == 0, done.stderr[-3000:]
    assert set(_metrics(plugin_dir).method) == {"shrink"}


def test_missing_plugin_module_is_a_config_error(plugin_dir):
    done = _run(["plugins=[not_a_module]"], plugin_dir)
    assert done.returncode != 0 and "`plugins`" in done.stderr


def test_python_api_from_a_script_outside_the_checkout(tmp_path):
    script = ("from unlearnbench import run\n"
              "r = run(['method=finetune', 'seed=0', 'debug=smoke', 'device=cpu', 'output_root=out'])\n"
              "print(sorted(r.models), len(r.metrics), r.run_dir.is_dir())\n"
              "again = run(['method=finetune', 'seed=0', 'debug=smoke', 'device=cpu', 'output_root=out'])\n"
              "print(again.skipped, again.metrics.equals(r.metrics))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = done.stdout.strip().splitlines()[-2:]
    assert first.startswith("['original', 'retrain', 'unlearned']") and first.endswith("True")
    assert second.startswith("True")
    run_dir = next((tmp_path / "out" / "runs").rglob("metrics.csv")).parent
    assert (run_dir / ".hydra" / "config.yaml").exists() and (run_dir / "unlearnbench.log").exists()
