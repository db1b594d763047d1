"""Training curves from the runs' ``train_log.csv``: loss and validation accuracy per epoch.

A run's ``train_log.csv`` (beside its metrics.csv) has one row per (role, epoch) with
columns ``role,epoch,step,loss,val_acc,seconds``. Curves are means over seeds. The
original and the oracle depend on the setting (dataset, forget set, ...), not on the
method, so they are drawn once per setting and column group; each method's unlearning
curve is drawn per row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import pandas as pd

from unlearnbench.reports.figure import STYLE, panel_grid, save
from unlearnbench.reports.load import fail, key_values
from unlearnbench.reports.summary import Table

LOG = "train_log.csv"
COLUMNS = ["role", "epoch", "step", "loss", "val_acc", "seconds"]
TRAINING = {"original": "-", "retrain": "--"}  # line style per trained role
TITLES = {"loss": "training loss", "val_acc": "validation accuracy"}


def read_logs(frame: pd.DataFrame, t: Table) -> pd.DataFrame:
    """Every run's train_log.csv with the table's row and column keys and a curve name.

    ``curve`` is the rows' and columns' values for unlearning curves; for the original's
    and oracle's it leaves out the table's subject (the method), which cannot change them.
    """
    runs = frame.drop_duplicates("run").copy()
    runs.attrs = frame.attrs
    keys = t.rows + t.cols
    for k in keys:
        runs[k] = key_values(runs, k)
    logs = []
    for _, run in runs.iterrows():
        path = Path(run["run"]).parent / LOG
        if path.exists():
            log = pd.read_csv(path)
            missing = [c for c in COLUMNS if c not in log.columns]
            if missing:
                fail(f"{path}: columns {missing} missing (expected {','.join(COLUMNS)})")
            logs.append(log.assign(**{k: run[k] for k in keys}, seed=run["seed"]))
    if not logs:
        fail(f"--curves: no {LOG} beside the runs' metrics.csv (runs from a version that "
             "wrote no training logs)")
    out = pd.concat(logs, ignore_index=True)
    context = [k for k in keys if k != t.subject]
    out["curve"] = [_name(r, keys if r["role"] == "unlearned" else context) for _, r in out.iterrows()]
    return out


def _name(row: pd.Series, keys: List[str]) -> str:
    return " / ".join(str(row[k]) for k in keys)


def mean_curves(logs: pd.DataFrame) -> pd.DataFrame:
    """Mean loss and val_acc over seeds per (role, curve, epoch); ``n`` = seeds averaged.

    The original and the oracle of one seed are logged by every method's run of that seed
    (one cached model): they count once per seed, not once per run.
    """
    once = logs.drop_duplicates(["role", "curve", "seed", "epoch"])
    grouped = once.groupby(["role", "curve", "epoch"], sort=False)
    out = grouped[["loss", "val_acc"]].mean()
    out["n"] = grouped.size()
    return out.reset_index()


def plot_curves(frame: pd.DataFrame, t: Table, path: Path, size: str = "double") -> List[Path]:
    """Loss and validation accuracy per epoch: training (original, oracle) and unlearning.

    Returns:
        The files written (``path`` as .pdf/.png, or both without a suffix).
    """
    import matplotlib.pyplot as plt

    curves = mean_curves(read_logs(frame, t))
    parts = [("training", curves[curves.role.isin(list(TRAINING))]),
             ("unlearning", curves[curves.role == "unlearned"])]
    # A panel per (part, metric) that has values: methods that log no validation accuracy
    # (or no unlearning epochs) leave theirs out.
    panels = [(metric, part, data) for part, data in parts for metric in TITLES if data[metric].notna().any()]
    with plt.rc_context(STYLE):
        if not panels:
            fail("--curves: the train_log.csv files hold no loss or val_acc values")
        fig, axes = panel_grid(len(panels), size)
        for ax, (metric, part, data) in zip(axes, panels):
            _draw(ax, data, metric, part)
        return save(fig, path)


def _draw(ax: Any, data: pd.DataFrame, metric: str, part: str) -> None:
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab10")
    names = list(dict.fromkeys(data["curve"]))
    for (role, curve), c in data.groupby(["role", "curve"], sort=False):
        c = c.dropna(subset=[metric])
        if c.empty:
            continue
        who = {"original": "original", "retrain": "oracle"}.get(role, "")
        name = " ".join(p for p in (who, curve) if p) or role
        ax.plot(c["epoch"], c[metric], TRAINING.get(role, "-"), marker=".", ms=2,
                color=palette(names.index(curve) % 10), label=name)
    ax.set_title(f"{part}: {TITLES[metric]}")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.legend(frameon=False)
