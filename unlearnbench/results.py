"""metrics.csv: long format, one row per (role, metric), identity and provenance in every row."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd

import unlearnbench

log = logging.getLogger("unlearnbench")
IDENTITY = ["experiment", "dataset", "model", "forget", "forget_size", "method", "seed", "role"]
COLUMNS = IDENTITY + ["metric", "value", "higher_is_better"]
ROLES = ("original", "retrain", "unlearned")
# Metric-name suffix -> the closed range its values lie in (metrics carry their unit in their name).
VALUE_RANGES = {"_acc": (0.0, 1.0), "_auc": (0.0, 1.0), "_efficacy": (0.0, 1.0),
                "_loss": (0.0, math.inf), "_s": (0.0, math.inf)}


def value_range(metric: str) -> tuple:
    """The closed range ``metric``'s values lie in, from its name's suffix ((-inf, inf) if none)."""
    for suffix, bounds in VALUE_RANGES.items():
        if metric.endswith(suffix):
            return bounds
    return (-math.inf, math.inf)


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


def record_path(path: Path) -> Path:
    """The integrity record of a metrics.csv: ``metrics.csv.sha256.json`` beside it."""
    return path.with_name(f"{path.name}.sha256.json")


def _replace_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """metrics.csv appears whole or not at all: it is the run's "finished" marker.

    Its integrity record (sha256, rows, columns) is written first, so a metrics.csv never
    exists without the record that vouches for it.
    """
    data = frame.to_csv(index=False).encode()
    record = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "rows": len(frame),
              "columns": list(frame.columns)}
    _replace_atomic(record_path(path), json.dumps(record, indent=1).encode())
    _replace_atomic(path, data)


class Damaged(Exception):
    """A metrics.csv that does not match its integrity record, or breaks the format."""


def verify(path: Path) -> Optional[Dict[str, Any]]:
    """Checks ``path`` against its integrity record; returns the record, or None if it has none
    (written before records existed). Raises Damaged on any mismatch."""
    rec_path = record_path(path)
    if not rec_path.exists():
        return None
    try:
        record = json.loads(rec_path.read_text())
        data = path.read_bytes()
    except (OSError, ValueError) as err:
        raise Damaged(f"{path}: unreadable ({err})") from err
    if not isinstance(record, dict) or hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise Damaged(f"{path} does not match its sha256 in {rec_path.name} (edited or truncated)")
    return record


def check_frame(frame: pd.DataFrame, path: Path) -> None:
    """Raises Damaged unless ``frame`` has metrics.csv's columns, known roles and values
    inside their metric's range (by name: ``*_acc``/``*_auc``/``*_efficacy`` in [0, 1],
    ``*_loss`` and ``*_s`` >= 0; none infinite)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing or frame.empty:
        raise Damaged(f"{path}: " + (f"columns {missing} missing" if missing else "no rows"))
    roles = set(frame["role"].astype(str)) - set(ROLES)
    if roles:
        raise Damaged(f"{path}: unknown roles {sorted(roles)} (expected {list(ROLES)})")
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = values.isna() & frame["value"].notna() | values.abs().eq(math.inf)
    for suffix, (low, high) in VALUE_RANGES.items():
        ours = frame["metric"].astype(str).str.endswith(suffix)
        bad |= ours & ((values < low) | (values > high))
    if bad.any():
        row = frame[bad].iloc[0]
        raise Damaged(f"{path}: {row['role']} {row['metric']} = {row['value']} is outside its range")


def finished(run_dir: Path) -> bool:
    """True if ``run_dir`` holds a metrics.csv its integrity record vouches for.

    A damaged, edited or unrecorded one (from a version without records) is reported and
    the run counts as unfinished: it is run again, never skipped and averaged.
    """
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return False
    try:
        if verify(path) is None:
            log.warning("%s has no integrity record (%s); running it again", path, record_path(path).name)
            return False
        read_checked(path)
    except Damaged as err:
        log.warning("%s; running it again", err)
        return False
    return True


def read_checked(path: Path) -> pd.DataFrame:
    """metrics.csv as written, after its integrity record and format checks (Damaged if not)."""
    verify(path)
    try:
        frame = pd.read_csv(path, dtype={"higher_is_better": str, "experiment": str},
                            keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as err:
        raise Damaged(f"{path}: not a CSV table ({err})") from err
    check_frame(frame, path)
    return frame
