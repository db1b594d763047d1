"""unlearnbench-compare on hand-written metrics.csv files."""

import pandas as pd
import pytest

from unlearnbench.compare import load_runs, render, table


def _write(folder, method, seed, forget_acc, test_acc):
    folder.mkdir(parents=True)
    rows = []
    for metric, value, hib in (("forget_acc", forget_acc, ""), ("test_acc", test_acc, "true")):
        rows.append({"experiment": "", "dataset": "digits", "model": "mlp", "forget": "random(fraction=0.1)",
                     "forget_size": 10, "method": method, "seed": seed, "role": "unlearned",
                     "metric": metric, "value": value, "higher_is_better": hib})
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)


def test_mean_std_n_and_arrows(tmp_path):
    _write(tmp_path / "a0", "finetune", 0, 0.5, 0.9)
    _write(tmp_path / "a1", "finetune", 1, 0.7, 0.8)
    _write(tmp_path / "b0", "retrain", 0, 0.2, 0.85)
    wide = table(load_runs([str(tmp_path)]))
    row = wide[wide.method == "finetune"].iloc[0]
    assert row["n"] == 2
    # sample std of (0.5, 0.7) = 0.1414
    assert row["forget_acc ≈θr"] == "0.600 ± 0.141"
    assert row["test_acc ↑"] == "0.850 ± 0.071"
    text = render(wide, "markdown")
    assert text.splitlines()[0] == "| method | n | forget_acc ≈θr | test_acc ↑ |"
    assert "\\pm" in render(wide, "latex")


def test_the_same_run_read_twice_counts_once(tmp_path):
    _write(tmp_path / "a0", "finetune", 0, 0.5, 0.9)
    wide = table(load_runs([str(tmp_path), str(tmp_path / "a0" / "metrics.csv")]))
    assert wide.n.tolist() == [1]


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no metrics.csv"):
        load_runs([str(tmp_path)])
