"""metrics.csv: long format, one row per (role, metric), identity and provenance in every row."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd

import unlearnbench

IDENTITY = ["experiment", "dataset", "model", "forget", "forget_size", "method", "seed", "role"]
COLUMNS = IDENTITY + ["metric", "value", "higher_is_better"]


def git_commit_of(src: Path) -> str:
    """The commit holding ``src`` (a package folder), "-dirty" if edited, else "unknown".

    "unknown" unless ``src/__init__.py`` is tracked: an installed copy inside a virtualenv
    that itself sits inside some git checkout must not report that checkout's commit.
    """
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=src, capture_output=True, text=True, timeout=5)

    try:
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0 or not commit.stdout.strip():
            return "unknown"
        if git("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the unlearnbench source tree, or "unknown" outside git."""
    return git_commit_of(Path(unlearnbench.__file__).resolve().parent)


def provenance(device_name: str) -> Dict[str, str]:
    import torch

    return {"package_version": unlearnbench.__version__, "git_commit": git_commit(),
            "torch_version": torch.__version__, "device_name": device_name,
            "host": platform.node()}


def metrics_frame(identity: Dict[str, Any], by_role: Dict[str, Dict[str, float]],
                  conventions: Dict[str, Optional[bool]], extra: Dict[str, Any]) -> pd.DataFrame:
    """Rows for every (role, metric); ``extra`` (timings, versions, cache keys) in each row."""
    rows: List[Dict[str, Any]] = []
    for role, metrics in by_role.items():
        for metric, value in metrics.items():
            hib = conventions.get(metric)
            rows.append({**identity, "role": role, "metric": metric, "value": float(value),
                         "higher_is_better": "" if hib is None else str(bool(hib)).lower(), **extra})
    return pd.DataFrame(rows)


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """metrics.csv appears whole or not at all: it is the run's "finished" marker."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
