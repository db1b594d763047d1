"""Tolerance checks of a comparison table against expected values (``--expect FILE``).

FILE is a CSV whose columns are the table's row/column keys plus ``metric``, ``expected``
and ``tolerance`` (e.g. ``method,forget,metric,expected,tolerance``); ``source`` and
``note`` columns, when present, are carried along (where a reference number comes from).
A cell passes when |measured mean − expected| ≤ tolerance; a cell with no runs is missing.
"""

from __future__ import annotations

from typing import List, Sequence

import pandas as pd

REQUIRED = ("metric", "expected", "tolerance")
ANNOTATIONS = ("source", "note")


class ExpectError(ValueError):
    """The expect file cannot be checked against this table (its keys or columns are wrong)."""


def read_expect(path: str) -> pd.DataFrame:
    """The expect file with its key columns as strings and numbers as floats."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ExpectError(f"{path}: missing column(s) {', '.join(missing)}; an expect file has the "
                          f"table's row/column keys plus metric,expected,tolerance")
    for col in ("expected", "tolerance"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
        if frame[col].isna().any():
            row = int(frame[col].isna().idxmax()) + 2  # 1-based, after the header
            raise ExpectError(f"{path}: line {row}: '{col}' is not a number")
    if (frame["tolerance"] < 0).any():
        raise ExpectError(f"{path}: tolerance must be >= 0")
    return frame


def key_columns(expect: pd.DataFrame) -> List[str]:
    """The expect file's table keys: every column but the value and annotation columns."""
    return [c for c in expect.columns if c not in REQUIRED + ANNOTATIONS]


def check(stats: pd.DataFrame, expect: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per expected cell: measured mean, n, delta and a verdict (ok / OUT / missing).

    Args:
        stats: the table's summary (key columns as strings, ``metric``, ``mean``, ``count``).
        expect: ``read_expect``'s frame.
        keys: the table's row and column keys; the expect file's keys must be exactly these.
    """
    wanted = key_columns(expect)
    if sorted(wanted) != sorted(keys):
        raise ExpectError(f"the expect file's keys ({', '.join(wanted) or 'none'}) are not the "
                          f"table's row/column keys ({', '.join(keys)}); pass --rows/--cols to match")
    on = list(keys) + ["metric"]
    measured = stats[on + ["mean", "count"]].rename(columns={"mean": "measured", "count": "n"})
    out = expect.merge(measured, on=on, how="left")
    out["delta"] = out["measured"] - out["expected"]
    out["verdict"] = "ok"
    # 1e-12 absorbs binary rounding of decimal inputs (0.50 − 0.52 is 0.0200000000000000018).
    out.loc[out["delta"].abs() > out["tolerance"] + 1e-12, "verdict"] = "OUT"
    out.loc[out["measured"].isna(), "verdict"] = "missing"
    return out


def render(result: pd.DataFrame, keys: Sequence[str], digits: int = 4) -> str:
    """Markdown: each cell with expected ± tolerance, measured (n), delta and verdict."""
    def num(x) -> str:
        return "—" if pd.isna(x) else f"{x:.{digits}f}"

    head = [*keys, "metric", "expected", "tolerance", "measured", "n", "delta", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in result.iterrows():
        n = "—" if pd.isna(r["n"]) else str(int(r["n"]))
        cells = [*(str(r[k]) for k in keys), r["metric"], num(r["expected"]), num(r["tolerance"]),
                 num(r["measured"]), n, num(r["delta"]), r["verdict"]]
        lines.append("| " + " | ".join(cells) + " |")
    bad = result[result["verdict"] != "ok"]
    summary = (f"{len(result) - len(bad)}/{len(result)} cells within tolerance"
               + (f"; {len(bad)} not: " + ", ".join(sorted(set(bad["verdict"]))) if len(bad) else ""))
    return "\n".join(lines) + "\n\n" + summary


def passed(result: pd.DataFrame) -> bool:
    return bool((result["verdict"] == "ok").all())


def expected_metrics(path: str) -> List[str]:
    """The metrics an expect file names (the table must summarise at least these)."""
    return list(dict.fromkeys(read_expect(path)["metric"]))

