"""A Table (or a plain wide frame) as Markdown, LaTeX, HTML or CSV text."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import pandas as pd

from unlearnbench.reports.load import fail
from unlearnbench.reports.summary import Group, Table, default_rows


def _col_label(group: Group) -> str:
    return ", ".join(map(str, group))


def render_markdown(t: Table, digits: int, ci: bool) -> str:
    header, groups, body = t.grid(digits, ci)
    labels = [f"{_col_label(g)}: {h}" if g else h for h, g in zip(header, groups)]
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
        out.append("<tr>" + "".join(f'<th colspan="{n}">{escape(_col_label(g))}</th>'
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


def _spans(groups: List[Group]) -> List[Tuple[Group, int]]:
    """Runs of equal neighbouring groups as (group, length): the header's column spans."""
    spans: List[Tuple[Group, int]] = []
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
        lines.append(" & ".join(rf"\multicolumn{{{n}}}{{c}}{{{latex_escape(_col_label(g))}}}"
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
    fail(f"unknown --format {fmt}")


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
    fail(f"unknown --format {fmt}")


def table(frame: pd.DataFrame, metrics: Optional[Sequence[str]] = None, digits: int = 3) -> pd.DataFrame:
    """The basic wide table (rows = identity columns that vary, cells mean ± std) as a frame."""
    t = Table(frame, default_rows(frame), (), metrics)
    header, _, body = t.grid(digits, ci=False)
    wide = pd.DataFrame([[v for v, _ in row] for row in body], columns=header)
    wide["n"] = [int(n) if n.isdigit() else n for n in wide["n"]]
    return wide
