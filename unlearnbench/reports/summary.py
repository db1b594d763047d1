"""Statistics over seeds per (row, column, metric) cell, and the Table built from them.

Each cell is mean ± std with a 95% t-interval and n; the Table adds the reference mean,
the gap to it, and the best marks (↑, ↓, or ≈θr for closer-to-oracle).
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import pandas as pd

from unlearnbench.reports.load import GROUP, TIME_METRICS, check_homogeneous, fail, key_values

ARROWS = {"true": "↑", "false": "↓", "": "≈θr"}
REFERENCE_ROLE = "retrain"  # every run evaluates its oracle under this role
Group = Tuple[str, ...]  # values of the row keys, or of the column keys
Cell = Tuple[str, bool]  # (text, is_best)


def t_halfwidth(std: float, n: int, level: float = 0.95) -> float:
    """Half-width of the two-sided t confidence interval of a mean (nan for n < 2)."""
    if n < 2 or pd.isna(std):
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))


def summarize(frame: pd.DataFrame, metrics: Optional[Sequence[str]] = None, role: str = "unlearned",
              keys: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Long frame -> one row per (keys, metric): mean, std, count, ci95 (half-width)."""
    keys = list(keys or [c for c in GROUP if c != "role"])
    rows = frame[frame.role == role].copy()
    if metrics:
        missing = sorted(set(metrics) - set(frame.metric))
        if missing:
            fail(f"metrics not in the runs: {', '.join(missing)}")
        rows = rows[rows.metric.isin(metrics)]
    for k in keys:
        rows[k] = key_values(rows, k)
    rows = rows.drop_duplicates(subset=["run", "metric"], keep="last")
    stats = rows.groupby(keys + ["metric"], sort=False)["value"].agg(["mean", "std", "count"])
    stats = stats.reset_index()
    stats["ci95"] = [t_halfwidth(s, n) for s, n in zip(stats["std"], stats["count"])]
    return stats


def default_rows(frame: pd.DataFrame) -> List[str]:
    return [c for c in GROUP if c != "role" and frame[c].astype(str).nunique() > 1] or ["method"]


class Table:
    """A summarised comparison: stats per (row, column, metric) and the best marks.

    Attributes:
        stats: one row per (row keys, col keys, metric) with mean, std, count, ci95, and
            ``ref`` (the reference mean at the same columns), ``gap`` (|mean - ref|), ``best``.
    """

    def __init__(self, frame: pd.DataFrame, rows: Sequence[str], cols: Sequence[str] = (),
                 metrics: Optional[Sequence[str]] = None, reference: Optional[str] = None,
                 role: str = "unlearned"):
        self.rows, self.cols, self.reference = list(rows), list(cols), reference
        # The oracle never competes for "best": with no --reference, method=retrain is skipped.
        self.excluded = reference or ("retrain" if self.rows[0] == "method" else None)
        keys = self.rows + self.cols
        scoped = frame.copy()
        scoped.attrs = frame.attrs
        for k in keys:
            scoped[k] = key_values(scoped, k)
        check_homogeneous(scoped, keys)
        self.metrics = list(metrics or [m for m in frame.metric.unique() if m not in TIME_METRICS])
        self.arrows = frame.drop_duplicates("metric").set_index("metric")["higher_is_better"].to_dict()
        stats = summarize(scoped, self.metrics, role, keys)
        self.stats = self._reference(stats, summarize(scoped, self.metrics, REFERENCE_ROLE, keys))
        self._mark_best()

    def _reference(self, stats: pd.DataFrame, oracle: pd.DataFrame) -> pd.DataFrame:
        """Attaches the reference mean: the --reference row at the same columns, else the oracle
        (role retrain) evaluated in the same runs."""
        on = self.cols + ["metric"]
        first = self.rows[0]
        if self.reference is not None and self.reference in set(stats[first]):
            ref = stats[stats[first] == self.reference]
            if ref.duplicated(on, keep=False).any():
                fail(f"--reference {self.reference} matches several rows per column; "
                     "narrow --rows or the runs")
        elif self.reference in (None, "retrain", "oracle"):
            on = self.rows + on  # each row against the oracle of its own runs (same seeds)
            ref = oracle
        else:
            fail(f"--reference {self.reference} is not a value of '{first}' "
                 f"({', '.join(sorted(set(stats[first])))})")
        ref = ref[on + ["mean"]].rename(columns={"mean": "ref"})
        out = stats.merge(ref, on=on, how="left")
        out["gap"] = (out["mean"] - out["ref"]).abs()
        return out

    def is_reference(self, stats: pd.DataFrame) -> pd.Series:
        """Rows that never compete for "best": the reference, and the no-op ``original``
        (it trivially wins on cost and retained accuracy)."""
        first = stats[self.rows[0]]
        out = first == self.excluded
        return out | (first == "original") if self.rows[0] == "method" else out

    def _mark_best(self) -> None:
        s = self.stats
        s["best"] = False
        s["best_gap"] = False
        candidates = s[~self.is_reference(s)]
        for _, group in candidates.groupby(self.cols + ["metric"], sort=False):
            arrow = self.arrows.get(group["metric"].iloc[0], "")
            score = {"true": -group["mean"], "false": group["mean"]}.get(arrow, group["gap"])
            if score.notna().any():
                s.loc[score[score == score.min()].index, "best"] = True
            if group["gap"].notna().any():
                s.loc[group.index[group["gap"] == group["gap"].min()], "best_gap"] = True

    def avg_gap(self) -> pd.DataFrame:
        """Mean over the shown metrics of |mean - reference| per (row, column)."""
        g = self.stats.groupby(self.rows + self.cols, sort=False)["gap"].mean().rename("avg_gap")
        g = g.reset_index()
        g["best"] = False
        cand = g[~self.is_reference(g)]
        for _, group in cand.groupby(self.cols, sort=False) if self.cols else [(None, cand)]:
            if group["avg_gap"].notna().any():
                g.loc[group.index[group["avg_gap"] == group["avg_gap"].min()], "best"] = True
        return g

    # ---- layout -------------------------------------------------------------------------

    def column_groups(self) -> List[Group]:
        if not self.cols:
            return [()]
        return list(dict.fromkeys(tuple(r) for r in self.stats[self.cols].itertuples(index=False)))

    def row_keys(self) -> List[Group]:
        keys = list(dict.fromkeys(tuple(r) for r in self.stats[self.rows].itertuples(index=False)))
        if self.excluded:  # the reference row last, like the oracle line of a paper table
            keys.sort(key=lambda k: k[0] == self.excluded)
        return keys

    def metric_label(self, metric: str) -> str:
        return f"{metric} {ARROWS.get(self.arrows.get(metric, ''), '')}".strip()

    def grid(self, digits: int = 3, ci: bool = True) -> Tuple[List[str], List[Group], List[List[Cell]]]:
        """(header labels, column groups per header, rows of (cell text, is_best))."""
        s = self.stats.set_index(self.rows + self.cols + ["metric"])
        gaps = self.avg_gap().set_index(self.rows + self.cols) if self.reference else None
        header, groups = self._header()
        return header, groups, [self._row(rk, s, gaps, digits, ci) for rk in self.row_keys()]

    def _header(self) -> Tuple[List[str], List[Group]]:
        header, groups = [*self.rows, "n"], [()] * (len(self.rows) + 1)
        for cg in self.column_groups():
            labels = [self.metric_label(m) for m in self.metrics]
            if self.reference:
                labels += [f"Δ{m} ↓" for m in self.metrics] + ["Avg.Gap ↓"]
            header += labels
            groups += [cg] * len(labels)
        return header, groups

    def _row(self, rk: Group, s: pd.DataFrame, gaps: Optional[pd.DataFrame], digits: int,
             ci: bool) -> List[Cell]:
        """One body row: the row keys, n (its range when cells differ), then the cells."""
        cells: List[Cell] = []
        counts: List[int] = []
        one = len(self.rows + self.cols) == 1  # pandas indexes a one-level index by scalars
        for cg in self.column_groups():
            for m in self.metrics:
                idx = (*rk, *cg, m)
                if idx not in s.index:
                    cells.append(("–", False))
                    continue
                r = s.loc[idx]
                counts.append(int(r["count"]))
                cells.append((_cell(r["mean"], r["std"], r["ci95"], digits, ci), bool(r["best"])))
            if self.reference:
                cells += [_number(s, (*rk, *cg, m), "gap", "best_gap", digits) for m in self.metrics]
                gidx = (*rk, *cg)[0] if one else (*rk, *cg)
                cells.append(_number(gaps, gidx, "avg_gap", "best", digits))
        return [*((v, False) for v in rk), (_count_range(counts), False), *cells]

    def tidy(self) -> pd.DataFrame:
        """Machine-readable long table (the csv format)."""
        out = self.stats.rename(columns={"count": "n"}).copy()
        out["ci95_lo"], out["ci95_hi"] = out["mean"] - out["ci95"], out["mean"] + out["ci95"]
        out["higher_is_better"] = out["metric"].map(self.arrows).fillna("")
        cols = self.rows + self.cols + ["metric", "higher_is_better", "n", "mean", "std", "ci95_lo",
                                        "ci95_hi", "best"]
        if self.reference:
            cols += ["ref", "gap"]
        return out[cols]


def _cell(mean: float, std: float, ci95: float, digits: int, ci: bool) -> str:
    std = 0.0 if pd.isna(std) else std
    text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    if ci and not pd.isna(ci95):
        text += f" [{mean - ci95:.{digits}f}, {mean + ci95:.{digits}f}]"
    return text


def _number(stats: pd.DataFrame, idx: Any, column: str, best: str, digits: int) -> Cell:
    """``stats.loc[idx, column]`` as text ("–" when absent), marked where ``best`` is set."""
    ok = idx in stats.index and pd.notna(stats.loc[idx, column])
    return (f"{stats.loc[idx, column]:.{digits}f}" if ok else "–", bool(ok and stats.loc[idx, best]))


def _count_range(counts: List[int]) -> str:
    """Seeds per cell: "3", or "2–3" when the row's cells differ."""
    if not counts:
        return "0"
    lo, hi = min(counts), max(counts)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"
