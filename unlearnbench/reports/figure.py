"""A Table as a paper figure: one panel per metric, the table's intervals as error bars.

Every column group is drawn (one colour each); the reference (the oracle, or ``--reference``)
is drawn once per setting and column group, as a dashed line, never again as a row. Error
bars are what the table's cells show: the (clipped) 95% t-interval by default, ± std with
``--no-ci``, none for a single seed. Sizes fit a paper: ``single`` (3.3 in, one column of a
two-column layout) or ``double`` (6.9 in, the full text width).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pandas as pd

from unlearnbench.reports.labels import label
from unlearnbench.reports.load import fail
from unlearnbench.reports.summary import Group, Table

WIDTHS = {"single": 3.3, "double": 6.9}  # inches: one column / the text width of a two-column paper
PANELS_PER_ROW = {"single": 2, "double": 4}  # also the legend's columns
DPI = 300
SUFFIXES = (".pdf", ".png")
MARKERS = "osD^v<>ph"  # one per row in the trade-off panel
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "legend.fontsize": 6, "lines.linewidth": 1.0,
         "axes.spines.top": False, "axes.spines.right": False, "pdf.fonttype": 42}  # 42: editable text


def output_paths(path: Path) -> List[Path]:
    """``out.pdf`` or ``out.png`` as given; ``out`` (no suffix) -> both."""
    if path.suffix.lower() in SUFFIXES:
        return [path]
    if path.suffix:
        fail(f"--plot/--curves {path}: the suffix must be .pdf or .png (or none for both)")
    return [path.with_suffix(s) for s in SUFFIXES]


def save(fig: Any, path: Path) -> List[Path]:
    """Writes ``fig`` to every output of ``path`` and closes it."""
    import matplotlib.pyplot as plt

    written = []
    for out in output_paths(path):
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=DPI)  # not bbox_inches="tight": the width stays the preset's
        written.append(out)
    plt.close(fig)
    return written


def panel_grid(n: int, size: str) -> Tuple[Any, List[Any]]:
    """A figure of ``n`` panels, ``PANELS_PER_ROW[size]`` to a row, at the preset width."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if size not in WIDTHS:
        fail(f"--figsize {size}: choose one of {', '.join(WIDTHS)}")
    nrows = math.ceil(n / PANELS_PER_ROW[size])
    ncols = math.ceil(n / nrows)  # balanced rows: 5 panels as 3 + 2, not 4 + 1
    width = WIDTHS[size]
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, nrows * 0.9 * width / ncols + 0.4),
                             layout="constrained", squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot(frame: pd.DataFrame, t: Table, path: Path, x: Optional[str] = None, y: Optional[str] = None,
         size: str = "double", ci: bool = True) -> List[Path]:
    """Draws ``figure(...)`` to ``path`` (``.pdf``/``.png``, or no suffix for both); returns the files."""
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        return save(figure(frame, t, x, y, size, ci), path)


def figure(frame: pd.DataFrame, t: Table, x: Optional[str] = None, y: Optional[str] = None,
           size: str = "double", ci: bool = True) -> Any:
    """One panel per metric of ``t`` (and an x-vs-y trade-off panel first when both are given).

    Args:
        frame: the runs (for the trade-off metrics when ``t`` does not show them).
        t: the table; its cells' intervals become the error bars.
        size: ``single`` or ``double`` column width.
        ci: True when the table shows the t-interval (the default), False for ± std.

    Returns:
        The matplotlib figure.
    """
    tradeoff = _tradeoff_table(frame, t, x, y)
    fig, axes = panel_grid(len(t.metrics) + bool(tradeoff), size)
    layout = Layout(t)
    if tradeoff:
        _tradeoff(axes.pop(0), tradeoff, layout, x, y, ci)
    for ax, metric in zip(axes, t.metrics):
        _metric_panel(ax, t, layout, metric, ci)
    _legend(fig, layout, ci, bool(tradeoff), _seeds(t), PANELS_PER_ROW[size])
    return fig


def _seeds(t: Table) -> str:
    """"3 seeds", or "2–3 seeds" when the cells differ."""
    counts = t.stats["count"]
    lo, hi = int(counts.min()), int(counts.max())
    return f"{lo} seed{'s' if hi > 1 else ''}" if lo == hi else f"{lo}–{hi} seeds"


def _tradeoff_table(frame: pd.DataFrame, t: Table, x: Optional[str], y: Optional[str]) -> Optional[Table]:
    if not (x and y):
        return None
    for m in (x, y):
        if m not in set(frame.metric):
            fail(f"--x/--y metric '{m}' is not in the runs")
    if {x, y} <= set(t.metrics):
        return t
    return Table(frame, t.rows, t.cols, [x, y], t.reference, timings=True)


class Layout:
    """Where each row goes on a panel's x axis and which colour each column group gets."""

    def __init__(self, t: Table):
        import matplotlib.pyplot as plt

        self.t = t
        subject = t.rows.index(t.subject)
        # The reference rows are drawn as the reference line, not as points of their own;
        # so are the retrain rows when the line is the oracle.
        drawn = {t.excluded} | ({"retrain"} if t.subject == "method" and self.is_oracle(t) else set())
        self.rows = [rk for rk in t.row_keys() if rk[subject] not in drawn]
        self.groups = t.column_groups()
        palette = plt.get_cmap("tab10")
        self.colors = {g: ("0.15" if len(self.groups) == 1 else palette(j % 10))
                       for j, g in enumerate(self.groups)}
        width = 0.7 / len(self.groups)
        self.offsets = {g: (j - (len(self.groups) - 1) / 2) * width for j, g in enumerate(self.groups)}
        self.reference_label = "oracle (retrain)" if self.is_oracle(t) else f"reference ({t.reference})"

    @staticmethod
    def is_oracle(t: Table) -> bool:
        """True when the reference line is the oracle (no --reference, or retrain/oracle)."""
        return t.reference in (None, "retrain", "oracle")

    def row_label(self, rk: Group) -> str:
        return " / ".join(rk)

    def group_label(self, g: Group) -> str:
        return ", ".join(g)

    def settings(self) -> Dict[Group, List[int]]:
        """Setting values (dataset, forget, ...) -> the x positions of their rows."""
        at = [self.t.rows.index(k) for k in self.t.setting]
        out: Dict[Group, List[int]] = {}
        for i, rk in enumerate(self.rows):
            out.setdefault(tuple(rk[a] for a in at), []).append(i)
        return out


def _cells(t: Table, metric: str) -> Dict[Group, pd.Series]:
    """(row keys..., column keys...) -> that cell's stats, for one metric."""
    s = t.stats[t.stats.metric == metric]
    return {tuple(r[k] for k in t.rows + t.cols): r for _, r in s.iterrows()}


def error_bar(r: pd.Series, ci: bool) -> Optional[Tuple[float, float]]:
    """(below, above) the mean: what the table's cell shows (interval or std); None for a
    single seed, whose cell shows no spread."""
    if r["count"] < 2 or pd.isna(r["std"]):
        return None
    if ci and not pd.isna(r["ci95"]):
        return r["mean"] - r["ci95_lo"], r["ci95_hi"] - r["mean"]
    return r["std"], r["std"]


def _metric_panel(ax: Any, t: Table, layout: Layout, metric: str, ci: bool) -> None:
    cells = _cells(t, metric)
    for g in layout.groups:
        points = [(i + layout.offsets[g], cells[(*rk, *g)]) for i, rk in enumerate(layout.rows)
                  if (*rk, *g) in cells]
        bars = [(x, r["mean"], error_bar(r, ci)) for x, r in points]
        spread = [b for b in bars if b[2] is not None]
        if spread:
            xs, ys, err = zip(*spread)
            ax.errorbar(xs, ys, yerr=list(zip(*err)), fmt="o", ms=3, capsize=2, elinewidth=0.8,
                        color=layout.colors[g])
        single = [b for b in bars if b[2] is None]
        if single:  # one seed: the value alone, as its cell shows it
            ax.plot([b[0] for b in single], [b[1] for b in single], "o", ms=3, color=layout.colors[g])
    _reference_lines(ax, t, layout, cells)
    ax.set_title(label(metric, t.arrows.get(metric, "")))
    ax.set_xticks(range(len(layout.rows)))
    ax.set_xticklabels([layout.row_label(rk) for rk in layout.rows], rotation=35, ha="right",
                       rotation_mode="anchor")
    ax.set_xlim(-0.6, len(layout.rows) - 0.4)
    ax.grid(axis="y", alpha=0.3, linewidth=0.5)


def _reference_lines(ax: Any, t: Table, layout: Layout, cells: Dict[Group, pd.Series]) -> None:
    """The reference once per (setting, column group): a dashed line over that setting's rows.

    Rows of one setting share their oracle when they share seeds (one cache); where their
    oracle means differ, each row gets its own short dash instead of one misleading line.
    """
    for g in layout.groups:
        for positions in layout.settings().values():
            refs = [(i, cells[(*layout.rows[i], *g)]["ref"]) for i in positions
                    if (*layout.rows[i], *g) in cells]
            refs = [(i, v) for i, v in refs if pd.notna(v)]
            if not refs:
                continue
            values = [v for _, v in refs]
            style = dict(color=layout.colors[g], linestyle="--", linewidth=0.8, alpha=0.8)
            if max(values) - min(values) <= 1e-9 * (1 + abs(max(values))):
                ax.hlines(values[0], min(positions) - 0.4, max(positions) + 0.4, **style)
            else:
                for i, v in refs:
                    ax.hlines(v, i + layout.offsets[g] - 0.15, i + layout.offsets[g] + 0.15, **style)


def _legend(fig: Any, layout: Layout, ci: bool, tradeoff: bool, seeds: str, ncol: int) -> None:
    """One legend for the figure: the column groups (if several), what the bars are, the
    reference line, and the trade-off panel's row markers."""
    from matplotlib.lines import Line2D

    def entry(text: str, **style: Any) -> Any:
        return Line2D([], [], color=style.pop("color", "0.3"), ms=3, linestyle="", label=text, **style)

    handles = [entry(layout.group_label(g), marker="o", color=layout.colors[g])
               for g in layout.groups if len(layout.groups) > 1]
    handles.append(entry(f"mean, 95% t-interval over {seeds}" if ci else f"mean ± std over {seeds}",
                         marker="o"))
    handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=0.8,
                          label=layout.reference_label + (" (★)" if tradeoff else "")))
    if tradeoff:
        handles += [entry(layout.row_label(rk), marker=MARKERS[i % len(MARKERS)])
                    for i, rk in enumerate(layout.rows)]
    fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), ncol), frameon=False)


def _tradeoff(ax: Any, t: Table, layout: Layout, x: str, y: str, ci: bool) -> None:
    """x vs y: one point per (row, column group) with both intervals; the reference once."""
    cx, cy = _cells(t, x), _cells(t, y)
    for g in layout.groups:
        for i, rk in enumerate(layout.rows):
            px, py = cx.get((*rk, *g)), cy.get((*rk, *g))
            if px is None or py is None:
                continue
            xerr, yerr = error_bar(px, ci), error_bar(py, ci)
            ax.errorbar(px["mean"], py["mean"], xerr=None if xerr is None else [[xerr[0]], [xerr[1]]],
                        yerr=None if yerr is None else [[yerr[0]], [yerr[1]]],
                        fmt=MARKERS[i % len(MARKERS)], ms=3.5, capsize=1.5, elinewidth=0.7,
                        color=layout.colors[g])
        refs = {(cx[k]["ref"], cy[k]["ref"]) for k in cx.keys() & cy.keys() if k[len(t.rows):] == g}
        for rx, ry in {r for r in refs if pd.notna(r[0]) and pd.notna(r[1])}:
            ax.plot(rx, ry, "*", ms=7, color=layout.colors[g], markeredgecolor="black", markeredgewidth=0.4)
    ax.set_xlabel(label(x, t.arrows.get(x, "")))
    ax.set_ylabel(label(y, t.arrows.get(y, "")))
    ax.set_title("trade-off")
    ax.grid(alpha=0.3, linewidth=0.5)
