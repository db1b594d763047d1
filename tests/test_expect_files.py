"""Every committed expect file (conf/table/*.expect.csv) is checkable: it parses, names only
registered methods, existing presets or forget sets and metrics some evaluator declares, its
keys are the ones its `make table-*` target passes to --expect, and its table's YAML points at it.
"""

import re
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from unlearnbench import expect
from unlearnbench.config import compose, config_dir
from unlearnbench.registry import EVALUATORS, FORGET_SPECS, METHODS

TABLES = Path(config_dir()) / "table"
EXPECT_FILES = sorted(TABLES.glob("*.expect.csv"))
MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"
DECLARED = {m for name in EVALUATORS.names() for m in EVALUATORS.get(name).metrics}


def _table(path: Path) -> str:
    return path.name[: -len(".expect.csv")]


def _check_experiment(value: str) -> None:
    assert (Path(config_dir()) / "experiment" / f"{value}.yaml").is_file(), f"no preset '{value}'"
    assert compose([f"experiment={value}"]).experiment_name == value


def _check_forget(value: str) -> None:
    assert value.split("(")[0] in FORGET_SPECS.names(), f"no forget set '{value}'"


KEY_CHECKS = {"method": lambda v: METHODS.get(v), "experiment": _check_experiment, "forget": _check_forget}


def test_there_are_expect_files():
    assert {"fashion", "salun"} <= {_table(p) for p in EXPECT_FILES}


@pytest.mark.parametrize("path", EXPECT_FILES, ids=_table)
def test_expect_file_names_only_what_exists(path):
    frame = expect.read_expect(str(path))
    assert len(frame) > 0
    assert set(frame["metric"]) <= DECLARED, f"undeclared metrics {set(frame['metric']) - DECLARED}"
    keys = expect.key_columns(frame)
    assert keys and set(keys) <= set(KEY_CHECKS), f"unknown key columns {keys}"
    for key in keys:
        for value in sorted(set(frame[key])):
            KEY_CHECKS[key](value)  # raises (UnknownNameError / AssertionError) naming the value
    assert not frame.duplicated(keys + ["metric"]).any(), "a cell is pinned twice"
    assert (frame["source"].str.len() > 0).all(), "every expected value names its source"


@pytest.mark.parametrize("path", EXPECT_FILES, ids=_table)
def test_table_yaml_points_at_its_expect_file(path):
    cfg = OmegaConf.load(TABLES / f"{_table(path)}.yaml")
    assert cfg.expect == path.name


def test_tables_without_a_file_say_none():
    have = {_table(p) for p in EXPECT_FILES}
    for yaml in TABLES.glob("*.yaml"):
        if yaml.stem not in have:
            assert OmegaConf.load(yaml).get("expect") is None, f"{yaml.name} names a missing expect file"


def test_make_targets_check_with_the_files_keys():
    """`$(call reference_check,NAME,RUNS --rows R --cols C)`: the file's keys are R and C."""
    calls = re.findall(r"\$\(call reference_check,(\w+),\S+ --rows (\w+) --cols (\w+)\)", MAKEFILE.read_text())
    assert calls, "no reference_check calls found in the Makefile"
    for name, rows, cols in calls:
        path = TABLES / f"{name}.expect.csv"
        if path.is_file():
            assert sorted(expect.key_columns(expect.read_expect(str(path)))) == sorted([rows, cols]), name


def _runs_at(root: Path, frame, shift=None) -> Path:
    """One seed per (method, experiment) whose unlearned metrics are the expected values."""
    for (method, experiment), cell in frame.groupby(["method", "experiment"]):
        folder = root / experiment / method
        folder.mkdir(parents=True)
        rows = [{"experiment": experiment, "dataset": "cifar10", "model": "resnet18", "forget": "f",
                 "forget_size": 1, "method": method, "seed": 0, "role": "unlearned", "metric": m,
                 "value": v + (shift[1] if shift and shift[0] == (method, experiment, m) else 0.0),
                 "higher_is_better": ""} for m, v in zip(cell["metric"], cell["expected"])]
        pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    return root


def test_salun_reference_check_passes_its_values_and_catches_a_shift(tmp_path, capsys):
    from unlearnbench.reports.cli import main

    path = str(TABLES / "salun.expect.csv")
    frame = expect.read_expect(path)
    argv = ["--rows", "method", "--cols", "experiment", "--expect", path]  # as make table-salun
    main([str(_runs_at(tmp_path / "right", frame))] + argv)
    assert f"{len(frame)}/{len(frame)} cells within tolerance" in capsys.readouterr().out
    cell = ("salun", "salun_cifar10_random10", "mia_svc_efficacy")
    with pytest.raises(SystemExit) as exit_:
        main([str(_runs_at(tmp_path / "wrong", frame, shift=(cell, 0.02)))] + argv)  # 2 pp > 1 pp
    assert exit_.value.code == 1
    assert "| salun | salun_cifar10_random10 | mia_svc_efficacy | 0.1439 | 0.0100 | 0.1639 |" in capsys.readouterr().out


def test_check_fashion_sweeps_every_pinned_method_and_forget_set():
    """make check-fashion builds its sweep from the expect file with scripts/expect_keys.py;
    forget descriptions hold commas and brackets, so a naive cut would mangle them."""
    import runpy

    keys = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "expect_keys.py"))["keys"]
    path = Path(config_dir()) / "table" / "fashion.expect.csv"
    frame = pd.read_csv(path)
    assert keys(str(path), "method").split(",") == sorted(frame.method.unique())
    forgets = keys(str(path), "forget").split(",")
    assert forgets == sorted({f.split("(")[0] for f in frame.forget}) and all(f in FORGET_SPECS.names() for f in forgets)
