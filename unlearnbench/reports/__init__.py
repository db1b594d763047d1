"""Reports from run dirs: the ``unlearnbench-compare`` command and the functions behind it."""

from unlearnbench.reports.cli import main
from unlearnbench.reports.figure import plot
from unlearnbench.reports.formats import latex_escape, render, table
from unlearnbench.reports.load import check_homogeneous, flatten, load_runs
from unlearnbench.reports.summary import Table, summarize, t_halfwidth

__all__ = ["Table", "check_homogeneous", "flatten", "latex_escape", "load_runs", "main", "plot",
           "render", "summarize", "t_halfwidth", "table"]
