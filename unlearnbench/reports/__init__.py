"""Reports from run dirs: the ``unlearnbench-compare`` command and the functions behind it.

Only run dirs are read (metrics.csv, .hydra/config.yaml); the pipeline, torch and the engine
are never imported. Modules by job: ``load`` (find and read runs), ``summary`` (statistics
over seeds, ``Table``), ``formats`` (Markdown, LaTeX, HTML, CSV), ``figure`` (one panel per metric, matplotlib),
``curves`` (train_log.csv per epoch), ``labels`` (readable metric names),
``cli`` (the command); ``audit`` with ``audit_load`` and ``audit_stats`` is the
``unlearnbench-audit`` command (per-example audits over seed populations). The names below are imported on first use, so ``--help`` does not
pay for pandas.
"""

from importlib import import_module
from typing import Any

_HOME = {"load_runs": "load", "check_homogeneous": "load", "flatten": "load",
         "summarize": "summary", "t_halfwidth": "summary", "Table": "summary",
         "render": "formats", "latex_escape": "formats", "table": "formats",
         "plot": "figure", "plot_curves": "curves", "label": "labels",
         "is_timing": "load", "main": "cli"}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
