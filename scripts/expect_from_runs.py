"""Write an expect file (for ``unlearnbench-compare --expect``) from measured runs.

expected = the mean over the runs' seeds; tolerance = max(K × their std, FLOOR). The check
re-runs one seed, which lies within a few stds of the mean; the floor keeps cells whose seeds
agree exactly (std 0) from failing on float noise between machines.

    python scripts/expect_from_runs.py outputs/tables/fashion --rows method --cols forget \\
        --metrics forget_acc,retain_acc --out conf/table/fashion.expect.csv
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

import pandas as pd

from unlearnbench.reports.load import load_runs
from unlearnbench.reports.summary import Table

K = 3.0        # tolerance in seed stds
FLOOR = 0.005  # smallest tolerance (half a point on an accuracy)


def expect_frame(t: Table, k: float = K, floor: float = FLOOR, source: str = "") -> pd.DataFrame:
    """One row per (row keys, col keys, metric) of ``t``: mean, tolerance, source."""
    keys = t.rows + t.cols
    stats = t.stats
    out = stats[keys + ["metric"]].copy()
    out["expected"] = stats["mean"].round(4)
    out["tolerance"] = (stats["std"].fillna(0.0) * k).clip(lower=floor).round(4)
    out["source"] = [f"{source} n={int(n)}".strip() for n in stats["count"]]
    return out


def runs_commits(runs: pd.DataFrame) -> str:
    """The commits the runs recorded in metrics.csv (short; ``-dirty`` kept: uncommitted
    changes were present while they ran), not this checkout's HEAD."""
    if "git_commit" not in runs:
        return "unknown"
    short = sorted({str(c)[:7] + ("-dirty" if str(c).endswith("-dirty") else "")
                    for c in runs["git_commit"].dropna()})
    return " ".join(short) or "unknown"


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run dirs or sweep dirs")
    parser.add_argument("--rows", default="method")
    parser.add_argument("--cols", default="")
    parser.add_argument("--metrics", required=True, help="comma-separated metrics to pin")
    parser.add_argument("--k", type=float, default=K, help=f"tolerance in seed stds (default {K})")
    parser.add_argument("--floor", type=float, default=FLOOR, help=f"smallest tolerance (default {FLOOR})")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    split = lambda text: [s for s in text.split(",") if s]  # noqa: E731
    runs = load_runs(args.paths)
    t = Table(runs, split(args.rows), split(args.cols), split(args.metrics))
    frame = expect_frame(t, args.k, args.floor, f"measured at {runs_commits(runs)}:")
    frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}: {len(frame)} cells")


if __name__ == "__main__":
    main()
