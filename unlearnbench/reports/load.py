"""Finding and reading run dirs: every metrics.csv under some paths, with its run config.

Only files are read here; nothing imports the pipeline, torch or the engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, NoReturn, Optional, Sequence

import pandas as pd

GROUP = ["experiment", "dataset", "model", "forget", "method", "role"]
IDENTITY = [c for c in GROUP if c != "role"] + ["forget_size"]
# Config keys that cannot change a run's results: they may differ inside one cell.
IGNORED_KEYS = {"overwrite", "progress", "output_root", "cache_dir", "data_root", "device",
                "run_dir", "seed"}
TIME_METRICS = {"rte_s", "speedup_vs_retrain"}  # wall clock: differ between identical reruns


def fail(msg: str) -> NoReturn:
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


def load_runs(paths: Sequence[str]) -> pd.DataFrame:
    """Concatenates every metrics.csv under ``paths``; adds ``run`` (an id per distinct run).

    The frame's ``attrs["configs"]`` maps each run id to its flattened config (or None).
    A run read twice (same identity, seed and config) keeps its newest copy.
    """
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
    frames, configs, seen = [], {}, {}
    for f in sorted(set(f.resolve() for f in files), key=lambda f: f.stat().st_mtime):
        frame = pd.read_csv(f, dtype={"higher_is_better": str, "experiment": str},
                            keep_default_na=False, na_values=[""])
        frame["experiment"] = frame["experiment"].fillna("")
        config = _run_config(f)
        ident = frame.iloc[0]
        config_part = {k: v for k, v in (config or {}).items() if k not in IGNORED_KEYS}
        key = json.dumps([[str(ident[c]) for c in IDENTITY if c in frame], int(ident["seed"]),
                          config_part], sort_keys=True)
        if key in seen:  # the same run again: the newer copy replaces the older
            old = seen[key]
            _warn_if_values_differ(frames[old[0]], frame, old[1], f)
            frames[old[0]] = frame.assign(run=str(f))
            configs.pop(old[1], None)
            configs[str(f)] = config
            seen[key] = (old[0], str(f))
            continue
        seen[key] = (len(frames), str(f))
        frames.append(frame.assign(run=str(f)))
        configs[str(f)] = config
    frame = pd.concat(frames, ignore_index=True)
    frame["higher_is_better"] = frame["higher_is_better"].fillna("").str.lower()
    frame.attrs["configs"] = configs
    return frame


def _warn_if_values_differ(old: pd.DataFrame, new: pd.DataFrame, old_path: str, new_path: Path) -> None:
    def values(f):
        f = f[~f.metric.isin(TIME_METRICS)]
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
    runs = frame.drop_duplicates("run")
    configs = frame.attrs.get("configs", {})
    problems = []
    for cell, group in runs.groupby(list(keys), sort=False, dropna=False):
        differing = [c for c in IDENTITY if c in group and c not in keys and group[c].nunique() > 1]
        known = [configs[r] for r in group["run"] if configs.get(r) is not None]
        if len(known) > 1:
            names = set().union(*known) - IGNORED_KEYS - set(keys)
            differing += sorted(k for k in names
                                if len({c.get(k, "<absent>") for c in known}) > 1
                                and not any(k == c or k.startswith(c + ".") for c in differing))
        if differing:
            label = ", ".join(f"{k}={v}" for k, v in zip(keys, cell if isinstance(cell, tuple) else (cell,)))
            problems.append(f"  [{label}]: {', '.join(differing)}")
    if problems:
        fail("refusing to average runs that differ in values that are neither a row nor a "
             "column; add the keys to --rows/--cols or pass fewer paths:\n" + "\n".join(problems))
