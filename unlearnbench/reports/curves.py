"""Training curves from the runs' ``train_log.csv``: loss and validation accuracy per epoch.

A run's ``train_log.csv`` (beside its metrics.csv) has one row per (role, epoch) with
columns ``role,epoch,step,loss,val_acc,seconds``. Curves are means over seeds. The
original and the oracle depend on the setting (dataset, forget set, ...), not on the
method, so they are drawn once per setting and column group; each method's unlearning
curve is drawn per row (a colour per method, a line style per setting or column group).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import pandas as pd

from unlearnbench.reports.figure import STYLE, WIDTHS, save
from unlearnbench.reports.load import fail, key_values
from unlearnbench.reports.summary import Table

LOG = "train_log.csv"
COLUMNS = ["role", "epoch", "step", "loss", "val_acc", "seconds"]
ROLE_STYLE = {"original": "-", "retrain": "--"}  # training curves: line style per role
ROLE_NAME = {"original": "original", "retrain": "oracle (retrain)"}
CONTEXT_STYLE = ["-", "--", ":", "-."]  # unlearning curves: line style per setting / column group
TITLES = {"loss": "loss", "val_acc": "validation accuracy"}


def read_logs(frame: pd.DataFrame, t: Table) -> pd.DataFrame:
    """Every run's train_log.csv, with ``seed``, ``subject`` and ``context``.

    ``subject`` is the run's value of the table's subject (its method) for unlearning rows and
    "" for the original's and the oracle's, which the method cannot change; ``context`` is
    the run's values of the other row keys and the column keys ("" when there are none).
    """
    runs = frame.drop_duplicates("run").copy()
    runs.attrs = frame.attrs
    context = [k for k in t.rows + t.cols if k != t.subject]
    for k in [t.subject, *context]:
        runs[k] = key_values(runs, k)
    logs = []
    for _, run in runs.iterrows():
        path = Path(run["run"]).parent / LOG
        if path.exists():
            log = pd.read_csv(path)
            missing = [c for c in COLUMNS if c not in log.columns]
            if missing:
                fail(f"{path}: columns {missing} missing (expected {','.join(COLUMNS)})")
            subject = log["role"].map(lambda role: run[t.subject] if role == "unlearned" else "")
            logs.append(log.assign(seed=run["seed"], subject=subject,
                                   context=" / ".join(str(run[k]) for k in context)))
    if not logs:
        fail(f"--curves: no {LOG} beside the runs' metrics.csv (runs from a version that "
             "wrote no training logs)")
    return pd.concat(logs, ignore_index=True)


def mean_curves(logs: pd.DataFrame) -> pd.DataFrame:
    """Mean loss and val_acc over seeds per (role, context, subject, epoch); ``n`` = seeds.

    The original and the oracle of one seed are logged by every method's run of that seed
    (one cached model): they count once per seed, not once per run.
    """
    keys = ["role", "context", "subject", "epoch"]
    grouped = logs.drop_duplicates([*keys, "seed"]).groupby(keys, sort=False)
    out = grouped[["loss", "val_acc"]].mean()
    out["n"] = grouped.size()
    return out.reset_index()


def plot_curves(frame: pd.DataFrame, t: Table, path: Path, size: str = "double") -> List[Path]:
    """Loss and validation accuracy per epoch: a row of panels for training (the original,
    solid, and the oracle, dashed) and one for unlearning (a colour per method).

    Returns:
        The files written (``path`` as .pdf/.png, or both without a suffix).
    """
    import matplotlib.pyplot as plt

    curves = mean_curves(read_logs(frame, t))
    parts = {"training": curves[curves.role.isin(list(ROLE_STYLE))], "unlearning": curves[curves.role == "unlearned"]}
    # Only the panels that have values: a method that logs no validation accuracy (or no
    # epochs) leaves its panel out.
    rows = {part: [m for m in TITLES if data[m].notna().any()] for part, data in parts.items()}
    rows = {part: metrics for part, metrics in rows.items() if metrics}
    if not rows:
        fail("--curves: the train_log.csv files hold no loss or val_acc values")
    with plt.rc_context(STYLE):
        fig = new_figure(size, len(rows))
        for sub, (part, metrics) in zip(fig.subfigures(len(rows), 1, squeeze=False)[:, 0], rows.items()):
            _part(sub, parts[part], metrics, part)
        return save(fig, path)


def new_figure(size: str, nrows: int) -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if size not in WIDTHS:
        fail(f"--figsize {size}: choose one of {', '.join(WIDTHS)}")
    width = WIDTHS[size]
    return plt.figure(figsize=(width, nrows * (0.3 * width + 0.3)), layout="constrained")


def _part(sub: Any, data: pd.DataFrame, metrics: List[str], part: str) -> None:
    """One row of panels (loss, validation accuracy) and its legend, right of them."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    palette = plt.get_cmap("tab10")
    training = part == "training"
    contexts = list(dict.fromkeys(data["context"]))
    subjects = list(dict.fromkeys(data["subject"]))
    axes = sub.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for (role, context, subject), c in data.groupby(["role", "context", "subject"], sort=False):
            c = c.dropna(subset=[metric])
            colour = palette((contexts if training else subjects).index(context if training else subject) % 10)
            style = ROLE_STYLE[role] if training else CONTEXT_STYLE[contexts.index(context) % len(CONTEXT_STYLE)]
            ax.plot(c["epoch"], c[metric], style, marker=".", ms=2, color=colour)
        ax.set_title(f"{part}: {TITLES[metric]}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, linewidth=0.5)
    sub.legend(handles=_handles(training, contexts, subjects, palette), loc="outside right center",
               frameon=False)


def _handles(training: bool, contexts: List[str], subjects: List[str], palette: Any) -> List[Any]:
    """Legend entries: colours (settings for training, methods for unlearning) and line styles
    (original/oracle for training, settings for unlearning when there are several)."""
    from matplotlib.lines import Line2D

    colours = contexts if training else subjects
    handles = [Line2D([], [], color=palette(i % 10), label=name or "all runs") for i, name in enumerate(colours)
               if training and len(colours) > 1 or not training]
    if training:
        handles += [Line2D([], [], color="0.3", linestyle=ROLE_STYLE[r], label=ROLE_NAME[r]) for r in ROLE_STYLE]
    elif len(contexts) > 1:
        handles += [Line2D([], [], color="0.3", linestyle=CONTEXT_STYLE[i % len(CONTEXT_STYLE)], label=c)
                    for i, c in enumerate(contexts)]
    return handles
