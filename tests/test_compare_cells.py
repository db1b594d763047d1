"""compare's cells on hand-computed cases: best within a setting, n = 1, clipped intervals,
timings hidden unless asked."""

from pathlib import Path

import pandas as pd
import pytest

from unlearnbench.reports import Table, load_runs, main


def write_run(root: Path, dataset: str, method: str, seed: int, values: dict, hib: dict) -> None:
    """One run dir's metrics.csv (unlearned and oracle rows) without a Hydra config."""
    folder = root / dataset / method / f"seed{seed}"
    folder.mkdir(parents=True)
    rows = [{"experiment": "", "dataset": dataset, "model": "mlp", "forget": "random(fraction=0.1)",
             "forget_size": 10, "method": method, "seed": seed, "role": role, "metric": m,
             "value": v, "higher_is_better": hib[m]}
            for role in ("unlearned", "retrain") for m, v in values.items()]
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)


HIB = {"test_acc": "true", "retain_loss": "false", "rte_s": "false", "precompute_s": "false",
       "speedup_vs_retrain": "true"}


def cells(capsys, *argv) -> dict:
    """The markdown table main() prints, as {first two cells joined by '/': the row}."""
    main([*map(str, argv)])
    lines = capsys.readouterr().out.splitlines()
    return {"/".join(c.strip() for c in line.split("|")[1:3]): line for line in lines[2:]}


def test_best_is_marked_within_each_dataset(tmp_path, capsys):
    # digits: a (0.9) beats b (0.8); fashion: b (0.7) beats a (0.6). Across datasets only
    # one cell would be marked (digits/a).
    for ds, (a, b) in {"digits": (0.9, 0.8), "fashion": (0.6, 0.7)}.items():
        write_run(tmp_path, ds, "a", 0, {"test_acc": a}, HIB)
        write_run(tmp_path, ds, "b", 0, {"test_acc": b}, HIB)
    rows = cells(capsys, tmp_path, "--metrics", "test_acc")  # default rows: dataset, method
    assert rows["digits/a"].endswith("| **0.900** |") and rows["digits/b"].endswith("| 0.800 |")
    assert rows["fashion/b"].endswith("| **0.700** |") and rows["fashion/a"].endswith("| 0.600 |")


def test_the_oracle_row_is_last_within_its_dataset_and_never_best(tmp_path, capsys):
    for ds in ("digits", "fashion"):
        for method, value in (("retrain", 0.99), ("a", 0.5)):
            write_run(tmp_path, ds, method, 0, {"test_acc": value}, HIB)
    rows = list(cells(capsys, tmp_path, "--metrics", "test_acc"))
    assert rows == ["digits/a", "digits/retrain", "fashion/a", "fashion/retrain"]
    t = Table(load_runs([str(tmp_path)]), ["dataset", "method"], (), ["test_acc"])
    assert sorted(t.stats[t.stats.best]["method"]) == ["a", "a"]


def test_a_single_seed_shows_its_value_without_an_interval(tmp_path, capsys):
    write_run(tmp_path, "digits", "a", 0, {"test_acc": 0.5}, HIB)
    for seed, value in enumerate((0.5, 0.7)):
        write_run(tmp_path, "digits", "b", seed, {"test_acc": value}, HIB)
    rows = cells(capsys, tmp_path, "--metrics", "test_acc")
    assert rows["a/1"].endswith("| 0.500 |")  # not "0.500 ± 0.000"
    # b: std of (0.5, 0.7) = 0.1414; t(0.975, 1) = 12.706 -> half-width 1.797, clipped to [0, 1]
    assert rows["b/2"].endswith("| **0.600 ± 0.141 [0.000, 1.000]** |")


def test_intervals_are_clipped_to_the_metric_range(tmp_path, capsys):
    # test_acc 0.98, 1.0, 1.0: mean 0.99333, std 0.011547, t(0.975, 2) = 4.302653:
    # half-width 0.028685 -> [0.964648, 1.022018] -> the upper end clipped to 1.
    # retain_loss 0.01, 0.02, 0.09: mean 0.04, std 0.043589, half-width 0.108282 -> lower end 0.
    for seed, (acc, loss) in enumerate(((0.98, 0.01), (1.0, 0.02), (1.0, 0.09))):
        write_run(tmp_path, "digits", "a", seed, {"test_acc": acc, "retain_loss": loss}, HIB)
    t = Table(load_runs([str(tmp_path)]), ["method"], (), ["test_acc", "retain_loss"])
    s = t.stats.set_index("metric")
    assert s.loc["test_acc", "ci95_lo"] == pytest.approx(0.964648, abs=1e-6)
    assert s.loc["test_acc", "ci95_hi"] == 1.0
    assert s.loc["retain_loss", "ci95_lo"] == 0.0
    assert s.loc["retain_loss", "ci95_hi"] == pytest.approx(0.148282, abs=1e-6)
    rows = cells(capsys, tmp_path, "--metrics", "test_acc,retain_loss", "--rows", "method")
    assert "0.993 ± 0.012 [0.965, 1.000]" in rows["a/3"] and "0.040 ± 0.044 [0.000, 0.148]" in rows["a/3"]
    main([str(tmp_path), "--metrics", "test_acc", "--format", "csv"])
    tidy = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert tidy["ci95_hi"].tolist() == [1.0]


def test_timings_are_hidden_unless_asked_for(tmp_path, capsys):
    values = {"test_acc": 0.9, "rte_s": 2.0, "precompute_s": 0.5, "speedup_vs_retrain": 4.0}
    write_run(tmp_path, "digits", "a", 0, values, HIB)
    header = lambda *extra: (main([str(tmp_path), *extra]), capsys.readouterr().out.splitlines()[0])[1]
    assert header() == "| method | n | test_acc ↑ |"
    assert header("--timings") == "| method | n | test_acc ↑ | rte_s ↓ | precompute_s ↓ | speedup_vs_retrain ↑ |"
    assert header("--metrics", "test_acc,precompute_s") == "| method | n | test_acc ↑ | precompute_s ↓ |"
