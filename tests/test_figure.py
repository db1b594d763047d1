"""compare --plot and --curves: panels, error bars equal to the table's intervals, the oracle
once, every column group, sizes and file types; labels from the metric metadata."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from unlearnbench.reports import Table, label, load_runs, main  # noqa: E402
from unlearnbench.reports.curves import mean_curves, plot_curves, read_logs  # noqa: E402
from unlearnbench.reports.figure import figure  # noqa: E402

HIB = {"forget_acc": "", "test_acc": "true", "rte_s": "false"}
# forget set -> method -> test_acc over seeds 0, 1, 2 (forget_acc is 0.5 + seed / 100)
TEST_ACC = {"random": {"finetune": [0.80, 0.82, 0.84], "gradient_ascent": [0.60, 0.62, 0.64],
                       "retrain": [0.85] * 3},
            "class": {"finetune": [0.70, 0.71, 0.72], "gradient_ascent": [0.50, 0.50, 0.50],
                      "retrain": [0.75] * 3}}
ORACLE_TEST_ACC = {"random": 0.85, "class": 0.75}


def write_run(root: Path, forget: str, method: str, seed: int) -> Path:
    folder = root / forget / method / f"seed{seed}"
    folder.mkdir(parents=True)
    unlearned = {"forget_acc": 0.5 + seed / 100, "test_acc": TEST_ACC[forget][method][seed], "rte_s": 1.0}
    oracle = {"forget_acc": 0.4, "test_acc": ORACLE_TEST_ACC[forget], "rte_s": 5.0}
    rows = [{"experiment": "", "dataset": "digits", "model": "mlp", "forget": forget, "forget_size": 10,
             "method": method, "seed": seed, "role": role, "metric": m, "value": v,
             "higher_is_better": HIB[m]}
            for role, values in (("unlearned", unlearned), ("retrain", oracle)) for m, v in values.items()]
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    return folder


@pytest.fixture
def runs(tmp_path) -> Path:
    for forget in TEST_ACC:
        for method in TEST_ACC[forget]:
            for seed in range(3):
                write_run(tmp_path / "runs", forget, method, seed)
    return tmp_path / "runs"


def panel(fig, title):
    return next(ax for ax in fig.axes if ax.get_visible() and ax.get_title() == title)


def error_segments(ax):
    """(x, y_low, y_high) of every vertical error bar drawn on ax."""
    out = []
    for container in ax.containers:
        for collection in container[2]:
            out += [(seg[0][0], seg[0][1], seg[1][1]) for seg in collection.get_segments()]
    return sorted(out)


def dashed_levels(ax):
    return sorted(round(seg[0][1], 6) for c in ax.collections if c.get_linestyle()[0][1]
                  for seg in c.get_segments())


def test_labels_come_from_the_name_and_its_direction():
    assert label("forget_acc", "") == "Forget accuracy (≈ oracle)"
    assert label("retain_acc", "true") == "Retain accuracy ↑"
    assert label("rte_s", "false") == "Run time (s) ↓"
    assert label("mia_loss_auc", "") == "MIA loss AUC (≈ oracle)"
    assert label("method.kl_weight", "true") == "Method: kl weight ↑"


def test_every_registered_metric_gets_a_label_in_words():
    from unlearnbench.evaluators.base import metric_info

    for name, metric in metric_info().items():
        hib = "" if metric.higher_is_better is None else str(metric.higher_is_better).lower()
        text = label(name, hib)
        assert "_" not in text and text[0].isupper(), text
        assert text.endswith({"true": "↑", "false": "↓", "": "(≈ oracle)"}[hib])


def test_one_panel_per_metric_with_the_table_interval_and_the_oracle_once(runs):
    frame = load_runs([str(runs / "random")])
    t = Table(frame, ["method"], (), ["test_acc", "forget_acc"])
    fig = figure(frame, t)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["Test accuracy ↑", "Forget accuracy (≈ oracle)"]
    ax = panel(fig, "Test accuracy ↑")
    # retrain is the dashed line, not a point of its own
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["finetune", "gradient_ascent"]
    assert dashed_levels(ax) == [0.85]
    # finetune 0.80/0.82/0.84: mean 0.82, half-width 4.302653 * 0.02 / sqrt(3) = 0.0496828
    (x0, lo0, hi0), (x1, lo1, hi1) = error_segments(ax)
    assert (lo0, hi0) == pytest.approx((0.82 - 0.0496828, 0.82 + 0.0496828), abs=1e-6)
    assert (lo1, hi1) == pytest.approx((0.62 - 0.0496828, 0.62 + 0.0496828), abs=1e-6)
    cells = t.stats.set_index(["method", "metric"])
    assert lo0 == pytest.approx(cells.loc[("finetune", "test_acc"), "ci95_lo"])
    # --no-ci: the bars are ± std, like the cells
    (_, lo, hi), _ = error_segments(panel(figure(frame, t, ci=False), "Test accuracy ↑"))
    assert (lo, hi) == pytest.approx((0.80, 0.84))


def test_every_column_group_is_drawn_with_its_own_oracle(runs):
    frame = load_runs([str(runs)])
    t = Table(frame, ["method"], ["forget"], ["test_acc"])
    ax = panel(figure(frame, t), "Test accuracy ↑")
    assert len(ax.containers) == 2  # random and class
    assert dashed_levels(ax) == [0.75, 0.85]
    means = sorted(round(y, 6) for c in ax.containers for y in c[0].get_ydata())
    assert means == [0.5, 0.62, 0.71, 0.82]
    # class/gradient_ascent has std 0: a zero-length bar at 0.5
    assert (0.5, 0.5) in {(round(lo, 6), round(hi, 6)) for _, lo, hi in error_segments(ax)}


def test_a_single_seed_has_no_error_bar(runs, tmp_path):
    frame = load_runs([str(runs / "random" / m / "seed1") for m in ("finetune", "retrain")])
    t = Table(frame, ["method"], (), ["test_acc"])
    ax = panel(figure(frame, t), "Test accuracy ↑")
    assert error_segments(ax) == [] and [tuple(line.get_ydata()) for line in ax.lines] == [(0.82,)]


def test_sizes_and_file_types(runs, tmp_path):
    frame = load_runs([str(runs / "random")])
    t = Table(frame, ["method"], (), ["test_acc", "forget_acc", "rte_s"])
    assert figure(frame, t, size="single").get_size_inches()[0] == pytest.approx(3.3)
    assert figure(frame, t, size="double").get_size_inches()[0] == pytest.approx(6.9)
    main([str(runs / "random"), "--plot", str(tmp_path / "fig"), "--figsize", "single",
          "--out", str(tmp_path / "t.md")])
    assert (tmp_path / "fig.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width_px = int.from_bytes((tmp_path / "fig.png").read_bytes()[16:20], "big")  # IHDR width
    assert width_px == round(3.3 * 300)  # the preset width exactly, nothing cropped or added
    with pytest.raises(SystemExit, match="suffix must be .pdf or .png"):
        main([str(runs / "random"), "--plot", str(tmp_path / "fig.svgz"), "--out", str(tmp_path / "t.md")])


def test_tradeoff_panel_first_when_asked(runs, tmp_path):
    frame = load_runs([str(runs / "random")])
    t = Table(frame, ["method"], (), ["test_acc"])
    fig = figure(frame, t, x="forget_acc", y="test_acc")
    ax = [a for a in fig.axes if a.get_visible()][0]
    assert ax.get_title() == "trade-off" and ax.get_xlabel() == "Forget accuracy (≈ oracle)"
    stars = [line for line in ax.lines if line.get_marker() == "*"]
    assert [(s.get_xdata()[0], s.get_ydata()[0]) for s in stars] == [pytest.approx((0.4, 0.85))]  # once


def write_log(run: Path, rows) -> None:
    pd.DataFrame(rows, columns=["role", "epoch", "step", "loss", "val_acc", "seconds"]).to_csv(
        run / "train_log.csv", index=False)


def test_curves_average_seeds_and_count_a_shared_original_once(runs, tmp_path):
    for method in ("finetune", "gradient_ascent"):
        for seed in range(2):
            run = runs / "random" / method / f"seed{seed}"
            # the original of seed s is shared by both methods (one cached model)
            write_log(run, [("original", 1, 10, 1.0 + seed, 0.5 + seed / 10, 1.0),
                            ("original", 2, 20, 0.5 + seed, 0.7 + seed / 10, 2.0),
                            ("unlearned", 1, 5, {"finetune": 0.2, "gradient_ascent": 3.0}[method] + seed,
                             None, 0.5)])
    frame = load_runs([str(runs / "random" / m / f"seed{s}") for m in ("finetune", "gradient_ascent")
                       for s in range(2)])
    t = Table(frame, ["method"], (), ["test_acc"])
    curves = mean_curves(read_logs(frame, t)).set_index(["role", "context", "subject", "epoch"])
    assert curves.loc[("original", "", "", 1), "loss"] == pytest.approx(1.5)  # seeds 1.0, 2.0
    assert curves.loc[("original", "", "", 2), "val_acc"] == pytest.approx(0.75)
    assert curves.loc[("original", "", "", 1), "n"] == 2  # not 4: both methods share each seed's original
    assert curves.loc[("unlearned", "", "finetune", 1), "loss"] == pytest.approx(0.7)
    assert curves.loc[("unlearned", "", "gradient_ascent", 1), "loss"] == pytest.approx(3.5)
    written = plot_curves(frame, t, tmp_path / "curves.png")
    assert written == [tmp_path / "curves.png"] and written[0].stat().st_size > 10_000
    # with forget as a column, each setting is its own context
    by_forget = Table(frame, ["method"], ["forget"], ["test_acc"])
    assert set(read_logs(frame, by_forget)["context"]) == {"random"}


def test_curves_without_logs_is_an_error(runs, tmp_path):
    with pytest.raises(SystemExit, match="no train_log.csv"):
        main([str(runs / "random"), "--curves", str(tmp_path / "c.png"), "--out", str(tmp_path / "t.md")])


def test_reports_import_no_torch():
    code = ("import sys, unlearnbench.reports.figure, unlearnbench.reports.curves, "
            "unlearnbench.reports.labels, unlearnbench.reports.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_reference_oracle_draws_the_retrain_rows_once_and_they_never_win(runs):
    frame = load_runs([str(runs / "random")])
    t = Table(frame, ["method"], (), ["test_acc"], reference="oracle")
    assert "retrain" not in set(t.stats[t.stats.best]["method"])  # 0.85 would beat finetune's 0.82
    ax = panel(figure(frame, t), "Test accuracy ↑")
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["finetune", "gradient_ascent"]
    assert dashed_levels(ax) == [0.85]


def test_a_method_as_reference_is_the_line_and_the_oracle_rows_are_points(runs):
    frame = load_runs([str(runs / "random")])
    t = Table(frame, ["method"], (), ["test_acc"], reference="finetune")
    fig = figure(frame, t)
    ax = panel(fig, "Test accuracy ↑")
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["gradient_ascent", "retrain"]
    assert dashed_levels(ax) == [0.82]
    assert "reference (finetune)" in [text.get_text() for text in fig.legends[0].get_texts()]
