"""unlearnbench-compare --expect: cells against expected values with tolerances."""

import pandas as pd
import pytest

from unlearnbench.reports.cli import main
from unlearnbench.expect import ExpectError, check, read_expect

from test_compare import sweep, write_run  # noqa: F401  (the fixture and its helper)

# finetune forget_acc over seeds = 0.90, 0.92, 0.94 (mean 0.92); test_acc mean 0.82.


def write_expect(path, rows, header="method,metric,expected,tolerance,source"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_check_verdicts_by_hand():
    stats = pd.DataFrame({"method": ["a", "a"], "metric": ["x", "y"], "mean": [0.50, 0.80], "count": [3, 3]})
    expect = pd.DataFrame({"method": ["a", "a", "b"], "metric": ["x", "y", "x"],
                           "expected": [0.52, 0.70, 0.1], "tolerance": [0.02, 0.05, 1.0]})
    out = check(stats, expect, ["method"])
    assert list(out["verdict"]) == ["ok", "OUT", "missing"]  # |Δ|=0.02 <= 0.02 passes; 0.10 > 0.05
    assert out["delta"].iloc[1] == pytest.approx(0.10)


def test_keys_must_match_the_table(tmp_path):
    path = write_expect(tmp_path / "e.csv", ["finetune,random,forget_acc,0.9,0.1,x"],
                        header="method,forget,metric,expected,tolerance,source")
    stats = pd.DataFrame({"method": ["finetune"], "metric": ["forget_acc"], "mean": [0.9], "count": [1]})
    with pytest.raises(ExpectError, match="--rows/--cols"):
        check(stats, read_expect(str(path)), ["method"])


def test_bad_expect_file_is_named(tmp_path):
    path = write_expect(tmp_path / "e.csv", ["finetune,forget_acc,high,0.1,x"])
    with pytest.raises(ExpectError, match="line 2: 'expected' is not a number"):
        read_expect(str(path))


def test_cli_passes_a_right_value_and_catches_a_wrong_one(sweep, tmp_path, capsys):  # noqa: F811
    right = write_expect(tmp_path / "right.csv", ["finetune,forget_acc,0.92,0.005,measured",
                                                  "finetune,test_acc,0.82,0.005,measured"])
    main([str(sweep), "--rows", "method", "--metrics", "forget_acc", "--expect", str(right)])
    out = capsys.readouterr().out
    assert "2/2 cells within tolerance" in out and "| finetune | test_acc |" in out

    wrong = write_expect(tmp_path / "wrong.csv", ["finetune,forget_acc,0.95,0.01,deliberately wrong",
                                                  "scrub,forget_acc,0.5,0.1,no such runs"])
    with pytest.raises(SystemExit) as exit_:
        main([str(sweep), "--rows", "method", "--expect", str(wrong)])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "| finetune | forget_acc | 0.9500 | 0.0100 | 0.9200 | 3 | -0.0300 | OUT |" in out
    assert "| scrub | forget_acc |" in out and "missing" in out


def test_expect_file_from_runs_round_trips(sweep, tmp_path, capsys):  # noqa: F811
    import runpy
    from pathlib import Path

    script = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "expect_from_runs.py"))
    out = tmp_path / "measured.csv"
    script["main"]([str(sweep), "--rows", "method", "--metrics", "forget_acc,retain_loss", "--out", str(out)])
    frame = read_expect(str(out))
    ft = frame[(frame.method == "finetune") & (frame.metric == "forget_acc")].iloc[0]
    assert ft.expected == pytest.approx(0.92) and ft.tolerance == pytest.approx(0.06)  # 3 × std 0.02
    flat = frame[(frame.method == "finetune") & (frame.metric == "retain_loss")].iloc[0]
    assert flat.tolerance == pytest.approx(0.005)  # equal seeds: the floor
    main([str(sweep), "--rows", "method", "--metrics", "forget_acc", "--expect", str(out)])
    assert "cells within tolerance" in capsys.readouterr().out
