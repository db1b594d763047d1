"""One log line per finished job of a sweep: its overrides, two headline metrics, its time.

With progress bars off (``progress=auto`` off a terminal), a sweep's console would otherwise
show only each job's own log; this line lets one follow a long sweep at a glance:
``[job 3] method=finetune seed=1: forget_acc 0.120 test_acc 0.950 (41.2 s)``.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

log = logging.getLogger("unlearnbench")
HEADLINE = ("forget_acc", "test_acc")
# Overrides that say where and how a job ran, not what it ran: left out of the line.
WHERE_KEYS = {"output_root", "cache_dir", "data_root", "device", "threads", "progress",
              "overwrite", "run_dir", "debug", "save_models"}


def shown_overrides(overrides: List[str]) -> str:
    """The overrides that tell a sweep's jobs apart (``WHERE_KEYS`` and ``hydra.*`` dropped)."""
    def key(item: str) -> str:
        return item.split("=", 1)[0].lstrip("+~")
    return " ".join(o for o in overrides if key(o) not in WHERE_KEYS and not key(o).startswith("hydra."))


def unlearned_metrics(metrics_csv: Path) -> Dict[str, float]:
    """The unlearned role's ``HEADLINE`` metrics in a run's metrics.csv ({} if it has none)."""
    if not metrics_csv.is_file():
        return {}
    with metrics_csv.open(newline="") as f:
        return {row["metric"]: float(row["value"]) for row in csv.DictReader(f)
                if row.get("role") == "unlearned" and row.get("metric") in HEADLINE}


def job_line(num: Any, overrides: List[str], metrics: Dict[str, float], status: str,
             seconds: Optional[float]) -> str:
    """``[job N] <overrides>: <metric value ...> (<seconds> s)``; the status when no metrics."""
    result = " ".join(f"{m} {metrics[m]:.3f}" for m in HEADLINE if m in metrics) or status
    took = f" ({seconds:.1f} s)" if seconds is not None else ""
    return f"[job {num}] {shown_overrides(overrides)}: {result}{took}"


class SweepLogCallback(Callback):
    """Logs ``job_line`` as each job of a multirun ends (single runs log their own summary)."""

    def __init__(self) -> None:
        self._started: Optional[float] = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.monotonic()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra = (job_return.hydra_cfg or config).hydra
        if hydra.mode != RunMode.MULTIRUN:
            return
        run_dir = Path(hydra.runtime.output_dir or job_return.working_dir)
        seconds = time.monotonic() - self._started if self._started is not None else None
        status = job_return.status.name.lower()
        log.info("%s", job_line(hydra.job.num, list(job_return.overrides or []),
                                unlearned_metrics(run_dir / "metrics.csv"), status, seconds))
