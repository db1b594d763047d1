"""``unlearnbench-compare PATH...``: every metrics.csv under the paths -> one table.

Runs are grouped by the identity columns minus the seed; each cell is mean ± std over
seeds with n. Arrows come from ``higher_is_better`` (↑, ↓, or ≈ for closer-to-oracle).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import pandas as pd

GROUP = ["experiment", "dataset", "model", "forget", "method", "role"]
ARROWS = {"true": "↑", "false": "↓", "": "≈θr"}


def load_runs(paths: Sequence[str]) -> pd.DataFrame:
    """Concatenates every metrics.csv found under ``paths`` (files or folders)."""
    files: List[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(p.rglob("metrics.csv")))
        else:
            raise SystemExit(f"unlearnbench-compare: no such file or folder: {p}")
    if not files:
        raise SystemExit(f"unlearnbench-compare: no metrics.csv under {', '.join(map(str, paths))}")
    frames = [pd.read_csv(f, dtype={"higher_is_better": str, "experiment": str},
                          keep_default_na=False, na_values=[""]) for f in files]
    frame = pd.concat(frames, ignore_index=True)
    frame["experiment"] = frame["experiment"].fillna("")
    frame["higher_is_better"] = frame["higher_is_better"].fillna("").str.lower()
    return frame


def summarize(frame: pd.DataFrame, metrics: Optional[Sequence[str]] = None,
              role: str = "unlearned") -> pd.DataFrame:
    """Long frame -> one row per group, columns per metric: mean, std, n."""
    rows = frame[frame.role == role]
    if metrics:
        missing = sorted(set(metrics) - set(rows.metric))
        if missing:
            raise SystemExit(f"unlearnbench-compare: metrics not in the runs: {', '.join(missing)}")
        rows = rows[rows.metric.isin(metrics)]
    # One value per (group, seed, metric): the same run read twice must not count twice.
    rows = rows.drop_duplicates(subset=GROUP + ["seed", "metric"], keep="last")
    stats = rows.groupby(GROUP + ["metric"], sort=False)["value"].agg(["mean", "std", "count"])
    return stats.reset_index()


def _cell(mean: float, std: float, n: int, digits: int) -> str:
    std = 0.0 if pd.isna(std) else std
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table(frame: pd.DataFrame, metrics: Optional[Sequence[str]] = None, digits: int = 3) -> pd.DataFrame:
    """The printable wide table: one row per method setting, one column per metric, plus n."""
    stats = summarize(frame, metrics)
    arrows = frame.drop_duplicates("metric").set_index("metric")["higher_is_better"]
    stats["cell"] = [_cell(m, s, n, digits) for m, s, n in zip(stats["mean"], stats["std"], stats["count"])]
    keys = [c for c in GROUP if c != "role" and stats[c].nunique() > 1] or ["method"]
    wide = stats.pivot_table(index=keys, columns="metric", values="cell", aggfunc="first", sort=False)
    order = [m for m in (metrics or stats.metric.unique()) if m in wide.columns]
    wide = wide[order]
    wide.columns = [f"{m} {ARROWS.get(arrows.get(m, ''), '')}".strip() for m in order]
    n = stats.groupby(keys, sort=False)["count"].max()
    wide.insert(0, "n", n.reindex(wide.index).astype(int))
    return wide.reset_index()


def render(wide: pd.DataFrame, fmt: str) -> str:
    if fmt == "markdown":
        header = "| " + " | ".join(map(str, wide.columns)) + " |"
        rule = "|" + "|".join("---" for _ in wide.columns) + "|"
        body = ["| " + " | ".join(map(str, row)) + " |" for row in wide.itertuples(index=False)]
        return "\n".join([header, rule, *body])
    if fmt == "latex":
        return wide.to_latex(index=False, escape=True).replace("±", r"$\pm$")
    if fmt == "csv":
        return wide.to_csv(index=False)
    raise SystemExit(f"unlearnbench-compare: unknown --format {fmt}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="unlearnbench-compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run dirs, sweep dirs or metrics.csv files")
    parser.add_argument("--metrics", help="comma-separated metrics to show (default: all)")
    parser.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv"])
    parser.add_argument("--digits", type=int, default=3, help="decimals in each cell")
    args = parser.parse_args(argv)
    metrics = args.metrics.split(",") if args.metrics else None
    sys.stdout.write(render(table(load_runs(args.paths), metrics, args.digits), args.format) + "\n")


if __name__ == "__main__":
    main()
