"""The trade-off scatter and per-metric bars of a Table, drawn with matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from unlearnbench.reports.load import fail
from unlearnbench.reports.summary import Group, Table


def plot(frame: pd.DataFrame, t: Table, path: Path, x: str, y: str) -> None:
    """Trade-off scatter (x vs y, ± std, oracle starred) and a per-metric bar chart."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    for m in (x, y):
        if m not in set(frame.metric):
            fail(f"--x/--y metric '{m}' is not in the runs")
    scatter_t = t if {x, y} <= set(t.metrics) else Table(frame, t.rows, t.cols, [x, y], t.reference)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 1.3]})
    colors = plt.get_cmap("tab10")
    _scatter(ax, scatter_t, x, y, colors)
    _bars(bx, t, colors)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _scatter(ax: Any, t: Table, x: str, y: str, colors: Any) -> None:
    """One point per (row, column group) at (mean x, mean y) with ± std bars."""
    s = t.stats.set_index(t.rows + t.cols + ["metric"])
    for i, rk in enumerate(t.row_keys()):
        for j, cg in enumerate(t.column_groups()):
            try:
                px, py = s.loc[(*rk, *cg, x)], s.loc[(*rk, *cg, y)]
            except KeyError:
                continue
            is_ref = _is_reference(t, rk)
            label = " / ".join([*rk, *cg]) + (" (reference)" if is_ref else "")
            ax.errorbar(px["mean"], py["mean"], xerr=_nz(px["std"]), yerr=_nz(py["std"]),
                        fmt="*" if is_ref else "o", ms=14 if is_ref else 7, capsize=3,
                        color="black" if is_ref else colors(i % 10), label=label,
                        alpha=1.0 if not cg or j == 0 else 0.6)
    if not t.reference or t.reference not in {rk[0] for rk in t.row_keys()}:
        _oracle_stars(ax, t, x, y)
    ax.set_xlabel(t.metric_label(x))
    ax.set_ylabel(t.metric_label(y))
    ax.set_title(f"{y} vs {x} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _oracle_stars(ax: Any, t: Table, x: str, y: str) -> None:
    """With no reference row, the runs' own oracle (role retrain) is starred per column group."""
    for cg in t.column_groups():
        sel = _select(t.stats, t.cols, cg)
        rx, ry = sel[sel.metric == x]["ref"].dropna(), sel[sel.metric == y]["ref"].dropna()
        if len(rx) and len(ry):
            ax.plot(rx.iloc[0], ry.iloc[0], "*", ms=16, color="black",
                    label="oracle (retrain)" + (f" / {', '.join(cg)}" if cg else ""))


def _bars(bx: Any, t: Table, colors: Any) -> None:
    """Mean ± std of every shown metric, one bar per row, in the first column group."""
    rks, width = t.row_keys(), 0.8 / max(1, len(t.row_keys()))
    metric_pos = {m: k for k, m in enumerate(t.metrics)}
    first_cg = t.column_groups()[0]
    for i, rk in enumerate(rks):
        sel = _select(t.stats, t.rows + t.cols, (*rk, *first_cg))
        pos = [metric_pos[m] + (i - (len(rks) - 1) / 2) * width for m in sel["metric"]]
        is_ref = _is_reference(t, rk)
        bx.bar(pos, sel["mean"], width, yerr=_nz(sel["std"]), capsize=2, label=" / ".join(rk),
               color="0.3" if is_ref else colors(i % 10), hatch="//" if is_ref else None)
    bx.set_xticks(range(len(t.metrics)))
    bx.set_xticklabels([t.metric_label(m) for m in t.metrics], rotation=30, ha="right")
    bx.set_title("per metric" + (f" ({', '.join(first_cg)})" if first_cg else "") + ", mean ± std")
    bx.grid(axis="y", alpha=0.3)
    bx.legend(fontsize=8)


def _select(stats: pd.DataFrame, keys: Sequence[str], values: Group) -> pd.DataFrame:
    for k, v in zip(keys, values):
        stats = stats[stats[k] == v]
    return stats


def _is_reference(t: Table, rk: Group) -> bool:
    return bool(t.reference) and rk[0] == t.reference


def _nz(std: Any) -> Any:
    """Std as error bars: NaN (a single seed) draws as 0."""
    if isinstance(std, float):
        return 0.0 if pd.isna(std) else std
    return pd.Series(std).fillna(0.0).to_numpy()
