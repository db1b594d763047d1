"""``unlearnbench-compare PATH...``: every metrics.csv under the paths -> one table (or plot).

Runs are grouped by ``--rows`` and ``--cols`` (identity columns such as ``method`` and
``forget``, or dotted config keys such as ``method.lr``); each cell is mean ± std over seeds
with a 95% t-interval and n. Arrows come from ``higher_is_better`` (↑, ↓, or ≈θr for
closer-to-oracle). The same run found twice (overlapping paths, copied sweeps) counts once.
Runs that differ in a config value that is neither a row nor a column are never averaged
together: the command stops and names the differing keys.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pandas as pd

GROUP = ["experiment", "dataset", "model", "forget", "method", "role"]
IDENTITY = [c for c in GROUP if c != "role"] + ["forget_size"]
ARROWS = {"true": "↑", "false": "↓", "": "≈θr"}
# Config keys that cannot change a run's results: they may differ inside one cell.
IGNORED_KEYS = {"overwrite", "progress", "output_root", "cache_dir", "data_root", "device",
                "run_dir", "seed"}
TIME_METRICS = {"rte_s", "speedup_vs_retrain"}  # wall clock: differ between identical reruns
REFERENCE_ROLE = "retrain"  # every run evaluates its oracle under this role


def _fail(msg: str) -> None:
    raise SystemExit(f"unlearnbench-compare: {msg}")


def flatten(tree: Any, prefix: str = "") -> Dict[str, str]:
    """Nested dicts -> {"a.b.c": value as JSON}, lists kept whole (they are one value)."""
    if isinstance(tree, dict):
        out: Dict[str, str] = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(tree, sort_keys=True, default=str)}


def _run_config(csv: Path) -> Optional[Dict[str, str]]:
    """The run's flattened ``.hydra/config.yaml`` (None for runs made outside the command)."""
    path = csv.parent / ".hydra" / "config.yaml"
    if not path.exists():
        return None
    import yaml

    return flatten(yaml.safe_load(path.read_text()) or {})


def load_runs(paths: Sequence[str]) -> pd.DataFrame:
    """Concatenates every metrics.csv under ``paths``; adds ``run`` (an id per distinct run).

    The frame's ``attrs["configs"]`` maps each run id to its flattened config (or None).
    A run read twice (same identity, seed and config) keeps its newest copy.
    """
    files: List[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(p.rglob("metrics.csv")))
        else:
            _fail(f"no such file or folder: {p}")
    if not files:
        _fail(f"no metrics.csv under {', '.join(map(str, paths))}")
    frames, configs, seen = [], {}, {}
    for f in sorted(set(f.resolve() for f in files), key=lambda f: f.stat().st_mtime):
        frame = pd.read_csv(f, dtype={"higher_is_better": str, "experiment": str},
                            keep_default_na=False, na_values=[""])
        frame["experiment"] = frame["experiment"].fillna("")
        config = _run_config(f)
        ident = frame.iloc[0]
        config_part = {k: v for k, v in (config or {}).items() if k not in IGNORED_KEYS}
        key = json.dumps([[str(ident[c]) for c in IDENTITY if c in frame], int(ident["seed"]),
                          config_part], sort_keys=True)
        if key in seen:  # the same run again: the newer copy replaces the older
            old = seen[key]
            _warn_if_values_differ(frames[old[0]], frame, old[1], f)
            frames[old[0]] = frame.assign(run=str(f))
            configs.pop(old[1], None)
            configs[str(f)] = config
            seen[key] = (old[0], str(f))
            continue
        seen[key] = (len(frames), str(f))
        frames.append(frame.assign(run=str(f)))
        configs[str(f)] = config
    frame = pd.concat(frames, ignore_index=True)
    frame["higher_is_better"] = frame["higher_is_better"].fillna("").str.lower()
    frame.attrs["configs"] = configs
    return frame


def _warn_if_values_differ(old: pd.DataFrame, new: pd.DataFrame, old_path: str, new_path: Path) -> None:
    def values(f):
        f = f[~f.metric.isin(TIME_METRICS)]
        return f.set_index(["role", "metric"])["value"].sort_index()

    a, b = values(old), values(new)
    if not (a.index.equals(b.index) and ((a - b).abs() <= 1e-9 * (1 + a.abs())).all()):
        print(f"unlearnbench-compare: warning: {old_path} and {new_path} are the same run with "
              "different values; using the newer", file=sys.stderr)


def _key_values(frame: pd.DataFrame, key: str) -> pd.Series:
    """Per-row values of an identity column or of a dotted config key."""
    if key in frame.columns:
        return frame[key].astype(str)
    configs = frame.attrs.get("configs", {})
    if not any(c is not None and key in c for c in configs.values()):
        _fail(f"'{key}' is neither a metrics.csv column ({', '.join(IDENTITY)}) "
              "nor a config key of any run (.hydra/config.yaml)")
    def value(run: str) -> str:
        config = configs.get(run)
        if config is None:
            _fail(f"--rows/--cols key '{key}' needs {Path(run).parent}/.hydra/config.yaml")
        raw = config.get(key, "null")
        return str(json.loads(raw)) if raw.startswith('"') else raw

    return frame["run"].map({r: value(r) for r in frame["run"].unique()})


def check_homogeneous(frame: pd.DataFrame, keys: Sequence[str]) -> None:
    """Stops if runs in one (row, column) cell differ in anything but the seed."""
    runs = frame.drop_duplicates("run")
    configs = frame.attrs.get("configs", {})
    problems = []
    for cell, group in runs.groupby(list(keys), sort=False, dropna=False):
        differing = [c for c in IDENTITY if c in group and c not in keys and group[c].nunique() > 1]
        known = [configs[r] for r in group["run"] if configs.get(r) is not None]
        if len(known) > 1:
            names = set().union(*known) - IGNORED_KEYS - set(keys)
            differing += sorted(k for k in names
                                if len({c.get(k, "<absent>") for c in known}) > 1
                                and not any(k == c or k.startswith(c + ".") for c in differing))
        if differing:
            label = ", ".join(f"{k}={v}" for k, v in zip(keys, cell if isinstance(cell, tuple) else (cell,)))
            problems.append(f"  [{label}]: {', '.join(differing)}")
    if problems:
        _fail("refusing to average runs that differ in values that are neither a row nor a "
              "column; add the keys to --rows/--cols or pass fewer paths:\n" + "\n".join(problems))


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
            _fail(f"metrics not in the runs: {', '.join(missing)}")
        rows = rows[rows.metric.isin(metrics)]
    for k in keys:
        rows[k] = _key_values(rows, k) if k not in rows.columns else rows[k].astype(str)
    rows = rows.drop_duplicates(subset=["run", "metric"], keep="last")
    stats = rows.groupby(keys + ["metric"], sort=False)["value"].agg(["mean", "std", "count"])
    stats = stats.reset_index()
    stats["ci95"] = [t_halfwidth(s, n) for s, n in zip(stats["std"], stats["count"])]
    return stats


def _default_rows(frame: pd.DataFrame) -> List[str]:
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
            scoped[k] = _key_values(scoped, k)
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
            dup = ref.duplicated(on, keep=False)
            if dup.any():
                _fail(f"--reference {self.reference} matches several rows per column; "
                      f"narrow --rows or the runs")
        elif self.reference in (None, "retrain", "oracle"):
            on = self.rows + on  # each row against the oracle of its own runs (same seeds)
            ref = oracle
        else:
            _fail(f"--reference {self.reference} is not a value of '{first}' "
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

    def column_groups(self) -> List[Tuple[str, ...]]:
        if not self.cols:
            return [()]
        return list(dict.fromkeys(tuple(r) for r in self.stats[self.cols].itertuples(index=False)))

    def row_keys(self) -> List[Tuple[str, ...]]:
        keys = list(dict.fromkeys(tuple(r) for r in self.stats[self.rows].itertuples(index=False)))
        if self.excluded:  # the reference row last, like the oracle line of a paper table
            keys.sort(key=lambda k: k[0] == self.excluded)
        return keys

    def metric_label(self, metric: str) -> str:
        return f"{metric} {ARROWS.get(self.arrows.get(metric, ''), '')}".strip()

    def grid(self, digits: int = 3, ci: bool = True) -> Tuple[List[str], List[Tuple[str, ...]], List[List[Tuple[str, bool]]]]:
        """(header labels, column groups per header, rows of (cell text, is_best))."""
        s = self.stats.set_index(self.rows + self.cols + ["metric"])
        gaps = self.avg_gap().set_index(self.rows + self.cols) if self.reference else None
        one = len(self.rows + self.cols) == 1  # pandas indexes a one-level index by scalars
        header, groups = [*self.rows, "n"], [()] * (len(self.rows) + 1)
        for cg in self.column_groups():
            for m in self.metrics:
                header.append(self.metric_label(m))
                groups.append(cg)
            if self.reference:
                for m in self.metrics:
                    header.append(f"Δ{m} ↓")
                    groups.append(cg)
                header.append("Avg.Gap ↓")
                groups.append(cg)
        body = []
        for rk in self.row_keys():
            cells, counts = [], []
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
                    for m in self.metrics:
                        idx = (*rk, *cg, m)
                        ok = idx in s.index and pd.notna(s.loc[idx, "gap"])
                        cells.append((f"{s.loc[idx, 'gap']:.{digits}f}" if ok else "–",
                                      bool(ok and s.loc[idx, "best_gap"])))
                    gidx = (*rk, *cg)[0] if one else (*rk, *cg)
                    ok = gidx in gaps.index and pd.notna(gaps.loc[gidx, "avg_gap"])
                    cells.append((f"{gaps.loc[gidx, 'avg_gap']:.{digits}f}" if ok else "–",
                                  bool(ok and gaps.loc[gidx, "best"])))
            n = f"{min(counts)}" if counts and min(counts) == max(counts) else \
                (f"{min(counts)}–{max(counts)}" if counts else "0")
            body.append([*((v, False) for v in rk), (n, False), *cells])
        return header, groups, body

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


# ---- renderers -------------------------------------------------------------------------

def _col_label(cols: Sequence[str], group: Tuple[str, ...]) -> str:
    return ", ".join(f"{v}" for v in group)


def render_markdown(t: Table, digits: int, ci: bool) -> str:
    header, groups, body = t.grid(digits, ci)
    labels = [f"{_col_label(t.cols, g)}: {h}" if g else h for h, g in zip(header, groups)]
    lines = ["| " + " | ".join(labels) + " |", "|" + "|".join("---" for _ in labels) + "|"]
    for row in body:
        lines.append("| " + " | ".join(f"**{v}**" if b else v for v, b in row) + " |")
    return "\n".join(lines)


def render_html(t: Table, digits: int, ci: bool) -> str:
    from html import escape

    header, groups, body = t.grid(digits, ci)
    out = ["<table>", "<thead>"]
    if t.cols:
        spans = _spans(groups)
        out.append("<tr>" + "".join(f'<th colspan="{n}">{escape(_col_label(t.cols, g))}</th>'
                                    for g, n in spans) + "</tr>")
    out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
    out += ["</thead>", "<tbody>"]
    for row in body:
        out.append("<tr>" + "".join(f"<td><b>{escape(v)}</b></td>" if b else f"<td>{escape(v)}</td>"
                                    for v, b in row) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


_LATEX_CHARS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = [("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"),
                  ("≈θr", r"$\approx\theta_r$"), ("Δ", r"$\Delta$"), ("–", "--")]


def latex_escape(text: str) -> str:
    """Escapes LaTeX specials character by character, then spells the table's symbols."""
    out = "".join(_LATEX_CHARS.get(ch, ch) for ch in str(text))
    for a, b in _LATEX_SYMBOLS:
        out = out.replace(a, b)
    return out


def _spans(groups: List[Tuple[str, ...]]) -> List[Tuple[Tuple[str, ...], int]]:
    spans: List[Tuple[Tuple[str, ...], int]] = []
    for g in groups:
        if spans and spans[-1][0] == g:
            spans[-1] = (g, spans[-1][1] + 1)
        else:
            spans.append((g, 1))
    return spans


def render_latex(t: Table, digits: int, ci: bool) -> str:
    header, groups, body = t.grid(digits, ci)
    lines = [r"\begin{tabular}{" + "l" * (len(t.rows) + 1) + "c" * (len(header) - len(t.rows) - 1) + "}",
             r"\toprule"]
    if t.cols:
        spans = _spans(groups)
        lines.append(" & ".join(rf"\multicolumn{{{n}}}{{c}}{{{latex_escape(_col_label(t.cols, g))}}}"
                                if g else " & ".join([""] * n) for g, n in spans) + r" \\")
    lines.append(" & ".join(latex_escape(h) for h in header) + r" \\")
    lines.append(r"\midrule")
    for row in body:
        lines.append(" & ".join(rf"\textbf{{{latex_escape(v)}}}" if b else latex_escape(v)
                                for v, b in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def render_frame(wide: pd.DataFrame, fmt: str) -> str:
    """A plain wide frame (from ``table``) as text; no best marks."""
    if fmt == "markdown":
        header = "| " + " | ".join(map(str, wide.columns)) + " |"
        rule = "|" + "|".join("---" for _ in wide.columns) + "|"
        body = ["| " + " | ".join(map(str, row)) + " |" for row in wide.itertuples(index=False)]
        return "\n".join([header, rule, *body])
    if fmt == "latex":
        lines = [r"\begin{tabular}{" + "l" * len(wide.columns) + "}", r"\toprule",
                 " & ".join(latex_escape(c) for c in wide.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in wide.itertuples(index=False)]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])
    if fmt == "html":
        return wide.to_html(index=False)
    if fmt == "csv":
        return wide.to_csv(index=False)
    _fail(f"unknown --format {fmt}")


def render(t, fmt: str, digits: int = 3, ci: bool = True) -> str:
    """A ``Table`` (with best marks) or a plain wide frame as markdown, latex, html or csv."""
    if isinstance(t, pd.DataFrame):
        return render_frame(t, fmt)
    if fmt == "markdown":
        return render_markdown(t, digits, ci)
    if fmt == "latex":
        return render_latex(t, digits, ci)
    if fmt == "html":
        return render_html(t, digits, ci)
    if fmt == "csv":
        return t.tidy().to_csv(index=False)
    _fail(f"unknown --format {fmt}")


# ---- plots -----------------------------------------------------------------------------

def plot(frame: pd.DataFrame, t: Table, path: Path, x: str, y: str) -> None:
    """Trade-off scatter (x vs y, ± std, oracle starred) and a per-metric bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for m in (x, y):
        if m not in set(frame.metric):
            _fail(f"--x/--y metric '{m}' is not in the runs")
    scatter_t = t if {x, y} <= set(t.metrics) else Table(frame, t.rows, t.cols, [x, y], t.reference)
    s = scatter_t.stats.set_index(t.rows + t.cols + ["metric"])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 1.3]})
    colors = plt.get_cmap("tab10")
    for i, rk in enumerate(scatter_t.row_keys()):
        for j, cg in enumerate(scatter_t.column_groups()):
            try:
                px, py = s.loc[(*rk, *cg, x)], s.loc[(*rk, *cg, y)]
            except KeyError:
                continue
            is_ref = bool(t.reference) and rk[0] == t.reference
            label = " / ".join([*rk, *cg]) + (" (reference)" if is_ref else "")
            ax.errorbar(px["mean"], py["mean"], xerr=_nz(px["std"]), yerr=_nz(py["std"]),
                        fmt="*" if is_ref else "o", ms=14 if is_ref else 7, capsize=3,
                        color="black" if is_ref else colors(i % 10), label=label,
                        alpha=1.0 if not cg or j == 0 else 0.6)
    if not t.reference or t.reference not in {rk[0] for rk in scatter_t.row_keys()}:
        st = scatter_t.stats  # no reference row: star the runs' own oracle (role retrain)
        for cg in scatter_t.column_groups():
            sel = st
            for k, v in zip(t.cols, cg):
                sel = sel[sel[k] == v]
            rx, ry = sel[sel.metric == x]["ref"].dropna(), sel[sel.metric == y]["ref"].dropna()
            if len(rx) and len(ry):
                ax.plot(rx.iloc[0], ry.iloc[0], "*", ms=16, color="black",
                        label="oracle (retrain)" + (f" / {', '.join(cg)}" if cg else ""))
    ax.set_xlabel(scatter_t.metric_label(x))
    ax.set_ylabel(scatter_t.metric_label(y))
    ax.set_title(f"{y} vs {x} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")

    bars = t.stats
    rks, width = t.row_keys(), 0.8 / max(1, len(t.row_keys()))
    metric_pos = {m: k for k, m in enumerate(t.metrics)}
    first_cg = t.column_groups()[0]
    for i, rk in enumerate(rks):
        sel = bars
        for k, v in zip(t.rows + t.cols, (*rk, *first_cg)):
            sel = sel[sel[k] == v]
        pos = [metric_pos[m] + (i - (len(rks) - 1) / 2) * width for m in sel["metric"]]
        is_ref = bool(t.reference) and rk[0] == t.reference
        bx.bar(pos, sel["mean"], width, yerr=_nz(sel["std"]), capsize=2, label=" / ".join(rk),
               color="0.3" if is_ref else colors(i % 10), hatch="//" if is_ref else None)
    bx.set_xticks(range(len(t.metrics)))
    bx.set_xticklabels([t.metric_label(m) for m in t.metrics], rotation=30, ha="right")
    bx.set_title("per metric" + (f" ({', '.join(first_cg)})" if first_cg else "") + ", mean ± std")
    bx.grid(axis="y", alpha=0.3)
    bx.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _nz(std):
    return pd.Series(std).fillna(0.0).to_numpy() if not isinstance(std, float) else (0.0 if pd.isna(std) else std)


# ---- command -------------------------------------------------------------------------

def table(frame: pd.DataFrame, metrics: Optional[Sequence[str]] = None, digits: int = 3) -> pd.DataFrame:
    """The basic wide table (rows = identity columns that vary, cells mean ± std) as a frame."""
    t = Table(frame, _default_rows(frame), (), metrics)
    header, _, body = t.grid(digits, ci=False)
    wide = pd.DataFrame([[v for v, _ in row] for row in body], columns=header)
    wide["n"] = [int(n) if n.isdigit() else n for n in wide["n"]]
    return wide


def _split(text: Optional[str]) -> List[str]:
    return [p.strip() for p in text.split(",") if p.strip()] if text else []


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="unlearnbench-compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run dirs, sweep dirs or metrics.csv files")
    parser.add_argument("--rows", help="comma-separated row keys: identity columns (method, forget, "
                                       "dataset, model, experiment) or config keys (method.lr); "
                                       "default: the identity columns that vary")
    parser.add_argument("--cols", help="comma-separated column keys (same choices as --rows)")
    parser.add_argument("--metrics", help="comma-separated metrics to show (default: all but timings)")
    parser.add_argument("--reference", help="a value of the first row key (e.g. retrain) to measure "
                                            "gaps against; adds Δ columns and Avg.Gap")
    parser.add_argument("--role", default="unlearned", help="which model's metrics: unlearned, original, retrain")
    parser.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv", "html"])
    parser.add_argument("--digits", type=int, default=3, help="decimals in each cell")
    parser.add_argument("--no-ci", action="store_true", help="omit the 95%% t-interval from cells")
    parser.add_argument("--out", help="write the table to this file instead of stdout")
    parser.add_argument("--plot", help="also draw the trade-off scatter and per-metric bars to this PNG/PDF")
    parser.add_argument("--x", default="forget_acc", help="scatter x metric (default forget_acc)")
    parser.add_argument("--y", default="retain_acc", help="scatter y metric (default retain_acc)")
    parser.add_argument("--expect", help="CSV of expected cells (the table's row/column keys + "
                                         "metric,expected,tolerance): prints each cell's delta and "
                                         "verdict, exits 1 if any is outside its tolerance or missing")
    args = parser.parse_args(argv)

    frame = load_runs(args.paths)
    rows = _split(args.rows) or _default_rows(frame)
    metrics = _split(args.metrics) or None
    if args.expect and metrics:  # the table must summarise every expected metric
        metrics = list(dict.fromkeys(metrics + _expected_metrics(args.expect)))
    t = Table(frame, rows, _split(args.cols), metrics, args.reference, args.role)
    text = render(t, args.format, args.digits, not args.no_ci)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    if args.plot:
        plot(frame, t, Path(args.plot), args.x, args.y)
    if args.expect:
        _check_expect(t, args.expect)


def _expected_metrics(path: str) -> List[str]:
    from unlearnbench import expect

    try:
        return expect.expected_metrics(path)
    except (expect.ExpectError, OSError) as err:
        _fail(str(err))


def _check_expect(t: Table, path: str) -> None:
    """Prints the --expect check and exits 1 unless every expected cell is within tolerance."""
    from unlearnbench import expect

    keys = t.rows + t.cols
    try:
        result = expect.check(t.stats, expect.read_expect(path), keys)
    except (expect.ExpectError, OSError) as err:
        _fail(str(err))
    sys.stdout.write(f"\nexpected values: {path}\n\n{expect.render(result, keys)}\n")
    if not expect.passed(result):
        sys.exit(1)


if __name__ == "__main__":
    main()
