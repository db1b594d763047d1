"""Statistics over seeds per (row, column, metric) cell, and the Table built from them.

Each cell is mean ± std with a 95% t-interval and n; the Table adds the reference mean,
the gap to it, and the best marks (↑, ↓, or ≈θr for closer-to-oracle). A metric whose name
gives it a closed range (``*_acc``, ``*_auc``, ``*_efficacy`` in [0, 1]; ``*_loss``, ``*_s``
>= 0) has its interval clipped to that range: the t-interval assumes an unbounded normal
mean, and an accuracy above 1 is impossible, not uncertain.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import pandas as pd

from unlearnbench.reports.load import GROUP, check_homogeneous, fail, is_timing, key_values
from unlearnbench.results import value_range

ARROWS = {"true": "↑", "false": "↓", "": "≈θr"}
REFERENCE_ROLE = "retrain"  # every run evaluates its oracle under this role
Group = Tuple[str, ...]  # values of the row keys, or of the column keys
Cell = Tuple[str, bool]  # (text, is_best)
# Row keys naming the setting a row was measured in, not a competitor: "best" is marked
# among rows that share them (never across datasets or forget sets). Dotted config keys
# count by their group: dataset.limit_train, forget.fraction, train.epochs.
SETTING_KEYS = ("experiment", "dataset", "model", "forget", "forget_size", "train", "eval")


def is_setting(key: str) -> bool:
    return key.split(".")[0] in SETTING_KEYS


def t_halfwidth(std: float, n: int, level: float = 0.95) -> float:
    """Half-width of the two-sided t confidence interval of a mean (nan for n < 2)."""
    if n < 2 or pd.isna(std):
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))


def summarize(frame: pd.DataFrame, metrics: Optional[Sequence[str]] = None, role: str = "unlearned",
              keys: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Long frame -> one row per (keys, metric): mean, std, count, ci95 (the t-interval's
    half-width) and ci95_lo/ci95_hi (its ends, clipped to the metric's range)."""
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
    low, high = zip(*map(value_range, stats["metric"])) if len(stats) else ((), ())
    stats["ci95_lo"] = (stats["mean"] - stats["ci95"]).clip(lower=pd.Series(low, dtype=float))
    stats["ci95_hi"] = (stats["mean"] + stats["ci95"]).clip(upper=pd.Series(high, dtype=float))
    return stats


def default_rows(frame: pd.DataFrame, cols: Sequence[str] = ()) -> List[str]:
    """The identity columns that vary between the runs and are not columns (else method)."""
    return [c for c in GROUP if c not in ("role", *cols) and frame[c].astype(str).nunique() > 1] or ["method"]


class Table:
    """A summarised comparison: stats per (row, column, metric) and the best marks.

    Attributes:
        stats: one row per (row keys, col keys, metric) with mean, std, count, ci95,
            ci95_lo/ci95_hi, ``ref`` (the reference mean in the same setting and columns),
            ``gap`` (|mean - ref|), ``best``.
        subject: the row key whose values compete (``method`` when it is a row key, else
            the first); ``--reference`` names one of its values.
        setting: the row keys naming the setting (dataset, forget, ...): best marks and the
            reference are taken within each of their values.
        timings: metrics hidden by default (``is_timing``), shown when named in ``metrics``
            or with ``timings=True``.
    """

    def __init__(self, frame: pd.DataFrame, rows: Sequence[str], cols: Sequence[str] = (),
                 metrics: Optional[Sequence[str]] = None, reference: Optional[str] = None,
                 role: str = "unlearned", timings: bool = False):
        self.rows, self.cols, self.reference = list(rows), list(cols), reference
        self.subject = "method" if "method" in self.rows else self.rows[0]
        self.setting = [k for k in self.rows if k != self.subject and is_setting(k)]
        # The oracle never competes for "best": with no --reference, method=retrain is skipped.
        self.excluded = reference or ("retrain" if self.subject == "method" else None)
        keys = self.rows + self.cols
        scoped = frame.copy()
        scoped.attrs = frame.attrs
        for k in keys:
            scoped[k] = key_values(scoped, k)
        check_homogeneous(scoped, keys)
        self.metrics = list(metrics or [m for m in frame.metric.unique() if timings or not is_timing(m)])
        self.arrows = frame.drop_duplicates("metric").set_index("metric")["higher_is_better"].to_dict()
        stats = summarize(scoped, self.metrics, role, keys)
        self.stats = self._reference(stats, summarize(scoped, self.metrics, REFERENCE_ROLE, keys))
        self._mark_best()

    def _reference(self, stats: pd.DataFrame, oracle: pd.DataFrame) -> pd.DataFrame:
        """Attaches the reference mean: the --reference row at the same columns, else the oracle
        (role retrain) evaluated in the same runs."""
        on = self.setting + self.cols + ["metric"]
        first = self.subject
        if self.reference is not None and self.reference in set(stats[first]):
            ref = stats[stats[first] == self.reference]
            if ref.duplicated(on, keep=False).any():
                fail(f"--reference {self.reference} matches several rows per column; "
                     "narrow --rows or the runs")
        elif self.reference in (None, "retrain", "oracle"):
            on = self.rows + self.cols + ["metric"]  # each row against its own runs' oracle (same seeds)
            ref = oracle
        else:
            fail(f"--reference {self.reference} is not a value of '{first}' "
                 f"({', '.join(sorted(set(stats[first])))})")
        ref = ref[on + ["mean"]].rename(columns={"mean": "ref"})
        out = stats.merge(ref, on=on, how="left")
        out["gap"] = (out["mean"] - out["ref"]).abs()
        return out

    def is_reference(self, stats: pd.DataFrame) -> pd.Series:
        """Rows that never compete for "best": the reference, the oracle (``retrain``) and the
        no-op ``original`` (it trivially wins on cost and retained accuracy)."""
        first = stats[self.subject]
        out = first == self.excluded
        return out | first.isin(["original", "retrain"]) if self.subject == "method" else out

    def _mark_best(self) -> None:
        s = self.stats
        s["best"] = False
        s["best_gap"] = False
        candidates = s[~self.is_reference(s)]
        for _, group in candidates.groupby(self.setting + self.cols + ["metric"], sort=False):
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
        within = self.setting + self.cols
        for _, group in cand.groupby(within, sort=False) if within else [(None, cand)]:
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
        if self.excluded:  # the reference row last in its setting, like a paper table's oracle line
            at = [self.rows.index(k) for k in self.setting]
            order: dict = {}
            for k in keys:
                order.setdefault(tuple(k[i] for i in at), len(order))
            subject = self.rows.index(self.subject)
            keys.sort(key=lambda k: (order[tuple(k[i] for i in at)], k[subject] == self.excluded))
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
                cells.append((_cell(r, digits, ci), bool(r["best"])))
            if self.reference:
                cells += [_number(s, (*rk, *cg, m), "gap", "best_gap", digits) for m in self.metrics]
                gidx = (*rk, *cg)[0] if one else (*rk, *cg)
                cells.append(_number(gaps, gidx, "avg_gap", "best", digits))
        return [*((v, False) for v in rk), (_count_range(counts), False), *cells]

    def tidy(self) -> pd.DataFrame:
        """Machine-readable long table (the csv format)."""
        out = self.stats.rename(columns={"count": "n"}).copy()
        out["higher_is_better"] = out["metric"].map(self.arrows).fillna("")
        cols = self.rows + self.cols + ["metric", "higher_is_better", "n", "mean", "std", "ci95_lo",
                                        "ci95_hi", "best"]
        if self.reference:
            cols += ["ref", "gap"]
        return out[cols]


def _cell(r: pd.Series, digits: int, ci: bool) -> str:
    """"mean ± std [lo, hi]"; a single seed has no spread to show, so just its value."""
    text = f"{r['mean']:.{digits}f}"
    if r["count"] < 2 or pd.isna(r["std"]):
        return text
    text += f" ± {r['std']:.{digits}f}"
    if ci and not pd.isna(r["ci95"]):
        text += f" [{r['ci95_lo']:.{digits}f}, {r['ci95_hi']:.{digits}f}]"
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
