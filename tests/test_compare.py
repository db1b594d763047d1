"""unlearnbench-compare on hand-made run dirs with hand-computed statistics."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from unlearnbench.reports import Table, load_runs, main, render, t_halfwidth, table

HIB = {"forget_acc": "", "test_acc": "true", "retain_loss": "false", "rte_s": "false"}
# method -> metric -> values over seeds 0, 1, 2 (the unlearned model)
VALUES = {
    "finetune": {"forget_acc": [0.90, 0.92, 0.94], "test_acc": [0.80, 0.82, 0.84], "retain_loss": [0.3] * 3},
    "gradient_ascent": {"forget_acc": [0.70, 0.72, 0.74], "test_acc": [0.60, 0.62, 0.64],
                        "retain_loss": [0.5] * 3},
    "retrain": {"forget_acc": [0.80] * 3, "test_acc": [0.85] * 3, "retain_loss": [0.1] * 3},
}
ORACLE = {"forget_acc": 0.80, "test_acc": 0.85, "retain_loss": 0.1}


def write_run(root: Path, method: str, seed: int, values=None, config=None, hydra=True) -> Path:
    """A run dir like the command writes: metrics.csv (+ .hydra/config.yaml)."""
    values = values or {m: v[seed] for m, v in VALUES[method].items()}
    folder = root / "runs" / method / f"seed{seed}"
    folder.mkdir(parents=True)
    rows = []
    for role, vals in (("unlearned", values), ("retrain", ORACLE), ("original", ORACLE)):
        for metric, value in {**vals, "rte_s": 1.0 + seed}.items():
            rows.append({"experiment": "", "dataset": "digits", "model": "mlp",
                         "forget": "random(fraction=0.1)", "forget_size": 54, "method": method,
                         "seed": seed, "role": role, "metric": metric, "value": value,
                         "higher_is_better": HIB[metric]})
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    if hydra:
        cfg = {"seed": seed, "device": "cpu", "output_root": str(root), "cache_dir": f"{root}/cache",
               "method": {"name": method, "lr": 0.01, "epochs": 1}, "train": {"epochs": 15}}
        for key, value in (config or {}).items():
            node = cfg
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return folder


@pytest.fixture
def sweep(tmp_path):
    for method in VALUES:
        for seed in range(3):
            write_run(tmp_path / "a", method, seed)
    return tmp_path / "a"


def test_t_interval_matches_hand_computation():
    # t(0.975, df=2) = 4.302653; std 0.02 over n=3 -> 4.302653 * 0.02 / sqrt(3)
    assert t_halfwidth(0.02, 3) == pytest.approx(0.0496828, abs=1e-6)
    assert pd.isna(t_halfwidth(0.0, 1))


def test_cells_best_marks_gaps_and_avg_gap(sweep, capsys):
    main([str(sweep), "--rows", "method", "--metrics", "forget_acc,test_acc", "--reference", "retrain"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("| method | n | forget_acc ≈θr | test_acc ↑ | Δforget_acc ↓ | Δtest_acc ↓ "
                        "| Avg.Gap ↓ |")
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert list(rows) == ["finetune", "gradient_ascent", "retrain"]  # the reference last
    # finetune: forget 0.92 (0.12 from retrain's 0.80), test 0.82 ± 0.02 (best ↑), gaps .12/.03
    assert rows["finetune"] == ("| finetune | 3 | 0.920 ± 0.020 [0.870, 0.970] | "
                                "**0.820 ± 0.020 [0.770, 0.870]** | 0.120 | **0.030** | **0.075** |")
    # gradient_ascent: forget 0.72 is closer to 0.80 (best ≈θr) although lower
    assert rows["gradient_ascent"].startswith("| gradient_ascent | 3 | **0.720 ± 0.020 [0.670, 0.770]** |")
    assert rows["gradient_ascent"].endswith("| **0.080** | 0.230 | 0.155 |")
    assert "**" not in rows["retrain"] and rows["retrain"].endswith("| 0.000 | 0.000 | 0.000 |")


def test_lower_is_better_and_oracle_role_as_reference(sweep):
    frame = load_runs([str(sweep)])
    t = Table(frame, ["method"], (), ["retain_loss", "forget_acc"])  # no --reference
    best = t.stats[t.stats.best].set_index("metric")["method"]
    assert best["retain_loss"] == "finetune"  # 0.3 < 0.5; retrain (0.1) does not compete
    assert best["forget_acc"] == "gradient_ascent"  # closest to the oracle role's 0.80
    ref = t.stats.set_index(["method", "metric"])["ref"]  # each row's own oracle (role retrain)
    assert ref[("finetune", "forget_acc")] == pytest.approx(0.8)
    assert ref[("gradient_ascent", "retain_loss")] == pytest.approx(0.1)


def test_same_run_in_two_sweeps_counts_once(sweep, tmp_path):
    write_run(tmp_path / "b", "finetune", 0, config={"cache_dir": "/elsewhere", "device": "cuda"})
    frame = load_runs([str(sweep), str(tmp_path / "b"), str(sweep / "runs" / "finetune")])
    t = Table(frame, ["method"], (), ["test_acc"])
    assert t.stats.set_index("method").loc["finetune", "count"] == 3


def test_refuses_to_average_runs_that_differ_in_a_hidden_config_value(sweep, tmp_path):
    write_run(tmp_path / "b", "finetune", 3, values={"forget_acc": 0.5, "test_acc": 0.5, "retain_loss": 0.5},
              config={"method.lr": 0.1, "train.epochs": 30})
    with pytest.raises(SystemExit) as err:
        main([str(sweep), str(tmp_path / "b"), "--metrics", "test_acc"])
    msg = str(err.value)
    assert "[method=finetune]: method.lr, train.epochs" in msg and "gradient_ascent" not in msg
    # Made a row key, the learning rate separates the runs instead.
    frame = load_runs([str(sweep), str(tmp_path / "b")])
    assert sorted(Table(frame, ["method", "method.lr"], (), ["test_acc"]).stats["count"]) == [1, 3, 3, 3]
    t = Table(frame, ["method", "method.lr"], ["train.epochs"], ["test_acc"])
    counts = t.stats.set_index(["method", "method.lr", "train.epochs"])["count"]
    assert counts[("finetune", "0.01", "15")] == 3 and counts[("finetune", "0.1", "30")] == 1


def test_runs_without_hydra_config_still_compare(tmp_path):
    for seed in range(2):
        write_run(tmp_path, "finetune", seed, hydra=False)
    t = Table(load_runs([str(tmp_path)]), ["method"], (), ["test_acc"])
    assert t.stats["mean"].iloc[0] == pytest.approx(0.81)


def test_formats_and_out_file(sweep, tmp_path, capsys):
    out = tmp_path / "t.tex"
    main([str(sweep), "--metrics", "test_acc,forget_acc", "--reference", "retrain", "--format", "latex",
          "--out", str(out), "--cols", "forget"])
    tex = out.read_text()
    assert r"\multicolumn{5}{c}{random(fraction=0.1)}" in tex
    assert r"\textbf{0.820 $\pm$ 0.020 [0.770, 0.870]}" in tex and r"test\_acc $\uparrow$" in tex
    assert tex.strip().endswith(r"\end{tabular}")
    main([str(sweep), "--metrics", "test_acc", "--format", "html"])
    assert "<td><b>0.820 ± 0.020 [0.770, 0.870]</b></td>" in capsys.readouterr().out
    main([str(sweep), "--metrics", "test_acc", "--format", "csv", "--reference", "retrain"])
    tidy = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    ft = tidy.set_index("method").loc["finetune"]
    assert ft["ci95_lo"] == pytest.approx(0.82 - 0.0496828, abs=1e-6) and ft["gap"] == pytest.approx(0.03)
    assert bool(ft["best"]) and ft["n"] == 3


def test_help_runs_with_dash_m_and_imports_no_pandas_or_torch():
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "unlearnbench.reports", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: unlearnbench-compare")
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert not imported & {"pandas", "torch", "matplotlib", "scipy"}, imported


def test_plot_writes_a_png(sweep, tmp_path):
    png = tmp_path / "fig" / "tradeoff.png"
    main([str(sweep), "--metrics", "forget_acc,test_acc,retain_loss", "--reference", "retrain",
          "--plot", str(png), "--x", "forget_acc", "--y", "test_acc", "--out", str(tmp_path / "t.md")])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    png2 = tmp_path / "oracle.png"  # no retrain row: the runs' oracle is starred
    main([str(sweep / "runs" / "finetune"), "--plot", str(png2), "--y", "test_acc",
          "--out", str(tmp_path / "u.md")])
    assert png2.stat().st_size > 10_000


# ---- the basic table API (kept for scripts that use it) ----


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


def test_original_never_wins_best(tmp_path):
    _write(tmp_path / "o", "original", 0, 0.9, 0.95)
    _write(tmp_path / "f", "finetune", 0, 0.8, 0.90)
    _write(tmp_path / "g", "gradient_ascent", 0, 0.7, 0.85)
    t = Table(load_runs([str(tmp_path)]), rows=["method"], metrics=["test_acc"])
    best = t.stats[t.stats.best]
    assert best.method.tolist() == ["finetune"]
