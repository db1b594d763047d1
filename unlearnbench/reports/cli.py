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
import sys
from pathlib import Path
from typing import List, Optional, Sequence



def _split(text: Optional[str]) -> List[str]:
    return [p.strip() for p in text.split(",") if p.strip()] if text else []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unlearnbench-compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run dirs, sweep dirs or metrics.csv files")
    parser.add_argument("--rows", help="comma-separated row keys: identity columns (method, forget, "
                                       "dataset, model, experiment) or config keys (method.lr); "
                                       "default: the identity columns that vary")
    parser.add_argument("--cols", help="comma-separated column keys (same choices as --rows)")
    parser.add_argument("--metrics", help="comma-separated metrics to show (default: all but timings)")
    parser.add_argument("--timings", action="store_true",
                        help="also show wall-clock metrics (*_s, speedup_vs_retrain); naming one in "
                             "--metrics shows it too")
    parser.add_argument("--reference", help="a value of the first row key (e.g. retrain) to measure "
                                            "gaps against; adds Δ columns and Avg.Gap")
    parser.add_argument("--role", default="unlearned",
                        help="which model's metrics: unlearned, original, retrain")
    parser.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv", "html"])
    parser.add_argument("--digits", type=int, default=3, help="decimals in each cell")
    parser.add_argument("--no-ci", action="store_true", help="omit the 95%% t-interval from cells")
    parser.add_argument("--out", help="write the table to this file instead of stdout")
    parser.add_argument("--plot", help="also draw the table: one panel per metric, error bars = the "
                                       "cells' interval, the oracle as a dashed line; out.pdf, out.png, "
                                       "or out (both)")
    parser.add_argument("--figsize", default="double", choices=["single", "double"],
                        help="figure width: single (3.3 in, one column) or double (6.9 in, text width)")
    parser.add_argument("--x", help="add an x-vs-y trade-off panel to --plot: its x metric "
                                    "(default forget_acc when --y is given)")
    parser.add_argument("--y", help="the trade-off panel's y metric (default retain_acc when --x is given)")
    parser.add_argument("--curves", help="draw the runs' train_log.csv (loss and validation accuracy per "
                                         "epoch, mean over seeds) to out.pdf, out.png or out (both)")
    parser.add_argument("--expect", help="CSV of expected cells (the table's row/column keys + "
                                         "metric,expected,tolerance): prints each cell's delta and "
                                         "verdict, exits 1 if any is outside its tolerance or missing")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Runs ``unlearnbench-compare`` with ``argv`` (default: the command line)."""
    args = _parser().parse_args(argv)
    # Late: pandas and matplotlib are only paid for once there is work (not for --help).
    from unlearnbench.reports.figure import plot
    from unlearnbench.reports.formats import render
    from unlearnbench.reports.load import load_runs
    from unlearnbench.reports.summary import Table, default_rows

    frame = load_runs(args.paths)
    rows = _split(args.rows) or default_rows(frame, _split(args.cols))
    metrics = _split(args.metrics) or None
    if args.expect and metrics:  # the table must summarise every expected metric
        metrics = list(dict.fromkeys(metrics + _expected_metrics(args.expect)))
    t = Table(frame, rows, _split(args.cols), metrics, args.reference, args.role, args.timings)
    text = render(t, args.format, args.digits, not args.no_ci)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    if args.plot:
        x, y = (args.x or "forget_acc", args.y or "retain_acc") if args.x or args.y else (None, None)
        plot(frame, t, Path(args.plot), x, y, args.figsize, not args.no_ci)
    if args.curves:
        from unlearnbench.reports.curves import plot_curves

        plot_curves(frame, t, Path(args.curves), args.figsize)
    if args.expect:
        _check_expect(t, args.expect)


def _expected_metrics(path: str) -> List[str]:
    from unlearnbench import expect
    from unlearnbench.reports.load import fail

    try:
        return expect.expected_metrics(path)
    except (expect.ExpectError, OSError) as err:
        fail(str(err))


def _check_expect(t, path: str) -> None:
    """Prints the --expect check and exits 1 unless every expected cell is within tolerance."""
    from unlearnbench import expect
    from unlearnbench.reports.load import fail

    keys = t.rows + t.cols
    try:
        result = expect.check(t.stats, expect.read_expect(path), keys)
    except (expect.ExpectError, OSError) as err:
        fail(str(err))
    sys.stdout.write(f"\nexpected values: {path}\n\n{expect.render(result, keys)}\n")
    if not expect.passed(result):
        sys.exit(1)
