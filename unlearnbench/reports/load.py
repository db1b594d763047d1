"""Finding and reading run dirs: every metrics.csv under some paths, with its run config.

Only files are read here; nothing imports the pipeline, torch or the engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, NoReturn, Optional, Sequence, Tuple

import pandas as pd

from unlearnbench.results import Damaged, read_checked, verify

GROUP = ["experiment", "dataset", "model", "forget", "method", "role"]
IDENTITY = [c for c in GROUP if c != "role"] + ["forget_size"]
# Config keys that cannot change a run's results: they may differ inside one cell.
IGNORED_KEYS = {"overwrite", "progress", "output_root", "cache_dir", "data_root", "device",
                "run_dir", "seed", "save_models", "plugins", "objective"}


def is_timing(metric: str) -> bool:
    """Wall-clock metrics (``*_s``, ``speedup_vs_retrain``) and cache flags: they differ
    between identical reruns and depend on the machine, so tables hide them unless asked."""
    return metric.endswith(("_s", "_cache_hit")) or metric == "speedup_vs_retrain"


def fail(msg: str) -> NoReturn:
    """Stops the command with a message (SystemExit, so no traceback)."""
    raise SystemExit(f"unlearnbench-compare: {msg}")


def flatten(tree: Any, prefix: str = "") -> Dict[str, str]:
    """Nested dicts -> {"a.b.c": value as JSON}, lists kept whole (they are one value)."""
    if isinstance(tree, dict):
        out: Dict[str, str] = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(tree, sort_keys=True, default=str)}


def _run_config(csv: Path) -> Optional[Dict[str, str]]:
    """The run's flattened ``.hydra/config.yaml`` (None for runs made outside the command)."""
    path = csv.parent / ".hydra" / "config.yaml"
    if not path.exists():
        return None
    import yaml

    return flatten(yaml.safe_load(path.read_text()) or {})


def _metrics_files(paths: Sequence[str]) -> List[Path]:
    """Each path's metrics.csv files: a file as given, a folder searched recursively."""
    files: List[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(p.rglob("metrics.csv")))
        else:
            fail(f"no such file or folder: {p}")
    if not files:
        fail(f"no metrics.csv under {', '.join(map(str, paths))}")
    return files


def load_runs(paths: Sequence[str]) -> pd.DataFrame:
    """Concatenates every metrics.csv under ``paths``; adds ``run`` (an id per distinct run).

    The frame's ``attrs["configs"]`` maps each run id to its flattened config (or None).
    A run read twice (same identity, seed and config) keeps its newest copy.
    """
    runs: Dict[str, Tuple[str, pd.DataFrame, Optional[Dict[str, str]]]] = {}
    files = set(f.resolve() for f in _metrics_files(paths))
    for f in sorted(files, key=lambda f: f.stat().st_mtime):  # oldest first: newer copies win
        frame, config = _read_metrics(f), _run_config(f)
        key = _run_key(frame, config)
        if key in runs:  # the same run again: it keeps its place, the newer copy replaces it
            _warn_if_values_differ(runs[key][1], frame, runs[key][0], f)
        runs[key] = (str(f), frame.assign(run=str(f)), config)
    frame = pd.concat([copy for _, copy, _ in runs.values()], ignore_index=True)
    frame["higher_is_better"] = frame["higher_is_better"].fillna("").str.lower()
    frame.attrs["configs"] = {run: config for run, _, config in runs.values()}
    return frame


def _read_metrics(csv: Path) -> pd.DataFrame:
    """One metrics.csv, checked against its integrity record, columns, roles and value
    ranges: a damaged or edited file stops the command, it is never averaged."""
    try:
        if verify(csv) is None:
            print(f"unlearnbench-compare: warning: {csv} has no integrity record (written by an "
                  "older version); read unverified", file=sys.stderr)
        frame = read_checked(csv)
    except Damaged as err:
        fail(f"{err}. Re-run that run (the same command redoes it) or leave its folder out.")
    frame["experiment"] = frame["experiment"].fillna("")
    return frame


def _run_key(frame: pd.DataFrame, config: Optional[Dict[str, str]]) -> str:
    """What makes a run itself: identity, seed, and the config keys that change results."""
    ident = frame.iloc[0]
    config_part = {k: v for k, v in (config or {}).items() if k not in IGNORED_KEYS}
    return json.dumps([[str(ident[c]) for c in IDENTITY if c in frame], int(ident["seed"]),
                       config_part], sort_keys=True)


def _warn_if_values_differ(old: pd.DataFrame, new: pd.DataFrame, old_path: str, new_path: Path) -> None:
    """Copies of one run should agree on every metric but the wall-clock ones."""
    def values(f):
        f = f[~f.metric.map(is_timing)]
        return f.set_index(["role", "metric"])["value"].sort_index()

    a, b = values(old), values(new)
    if not (a.index.equals(b.index) and ((a - b).abs() <= 1e-9 * (1 + a.abs())).all()):
        print(f"unlearnbench-compare: warning: {old_path} and {new_path} are the same run with "
              "different values; using the newer", file=sys.stderr)


def key_values(frame: pd.DataFrame, key: str) -> pd.Series:
    """Per-row values of an identity column or of a dotted config key."""
    if key in frame.columns:
        return frame[key].astype(str)
    configs = frame.attrs.get("configs", {})
    if not any(c is not None and key in c for c in configs.values()):
        fail(f"'{key}' is neither a metrics.csv column ({', '.join(IDENTITY)}) "
             "nor a config key of any run (.hydra/config.yaml)")

    def value(run: str) -> str:
        config = configs.get(run)
        if config is None:
            fail(f"--rows/--cols key '{key}' needs {Path(run).parent}/.hydra/config.yaml")
        raw = config.get(key, "null")
        return str(json.loads(raw)) if raw.startswith('"') else raw

    return frame["run"].map({r: value(r) for r in frame["run"].unique()})


def check_homogeneous(frame: pd.DataFrame, keys: Sequence[str]) -> None:
    """Stops if runs in one (row, column) cell differ in anything but the seed."""
    configs = frame.attrs.get("configs", {})
    problems = []
    for cell, runs in frame.drop_duplicates("run").groupby(list(keys), sort=False, dropna=False):
        differing = _differing(runs, keys, configs)
        if differing:
            values = cell if isinstance(cell, tuple) else (cell,)
            label = ", ".join(f"{k}={v}" for k, v in zip(keys, values))
            problems.append(f"  [{label}]: {', '.join(differing)}")
    if problems:
        fail("refusing to average runs that differ in values that are neither a row nor a "
             "column; add the keys to --rows/--cols or pass fewer paths:\n" + "\n".join(problems))


def _differing(runs: pd.DataFrame, keys: Sequence[str], configs: Dict[str, Any]) -> List[str]:
    """Identity columns, then config keys, whose values differ between ``runs``.

    A config key under a differing identity column (``method.lr`` when ``method`` differs)
    is implied by it and not named again.
    """
    differing = [c for c in IDENTITY if c in runs and c not in keys and runs[c].nunique() > 1]
    known = [configs[r] for r in runs["run"] if configs.get(r) is not None]
    if len(known) > 1:
        names = set().union(*known) - IGNORED_KEYS - set(keys)
        differing += sorted(k for k in names
                            if len({c.get(k, "<absent>") for c in known}) > 1
                            and not any(k == c or k.startswith(c + ".") for c in differing))
    return differing
