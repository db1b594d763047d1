"""The end-of-run summary: a few headline metrics of a run's metrics.csv, as a small table."""

from pathlib import Path
from typing import Union

import pandas as pd

HEADLINE = ("forget_acc", "retain_acc", "test_acc", "mia_loss_auc")
COLUMNS = {"unlearned": "unlearned", "oracle": "retrain", "original": "original"}  # header -> role
TIMING = ("rte_s", "speedup_vs_retrain")


def _value(frame: pd.DataFrame, role: str, metric: str) -> str:
    rows = frame[(frame["role"] == role) & (frame["metric"] == metric)]
    return f"{float(rows['value'].iloc[0]):.3f}" if len(rows) else "-"


def summary_text(frame: pd.DataFrame, run_dir: Union[str, Path]) -> str:
    """A fixed-width table of the headline metrics by role, and a line naming the run dir.

    Args:
        frame: a run's metrics.csv rows (columns ``role``, ``metric``, ``value``).
        run_dir: the run's folder, named on the last line.

    Returns:
        Rows for those of forget_acc, retain_acc, test_acc and mia_loss_auc present in
        ``frame``; columns unlearned, oracle (role ``retrain``) and original, to 3 decimals;
        then the run dir and, where present, the unlearned role's ``rte_s`` and
        ``speedup_vs_retrain``.
    """
    metrics = [m for m in HEADLINE if m in set(frame["metric"])]
    width = max([len("metric")] + [len(m) for m in metrics])
    lines = [f"{'metric':<{width}}" + "".join(f" {c:>9}" for c in COLUMNS)]
    for metric in metrics:
        lines.append(f"{metric:<{width}}"
                     + "".join(f" {_value(frame, role, metric):>9}" for role in COLUMNS.values()))
    tail = [f"run dir {run_dir}"]
    for metric in TIMING:
        value = _value(frame, "unlearned", metric)
        if value != "-":
            tail.append(f"{metric} {value}")
    return "\n".join(lines + ["  ".join(tail)])
