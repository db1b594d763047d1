"""Finished run dirs -> seed populations for the audit (only files are read: no torch).

A population is every run of one method configuration on one testbed: runs that differ
only in ``seed`` and forget the same examples. Runs on different testbeds (any other
config key differs) are refused with the differing keys named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, NoReturn, Sequence

import numpy as np
import pandas as pd

from unlearnbench.reports import load
from unlearnbench.results import Damaged, read_checked

# Keys that do not make another testbed: compare's, plus the thread count (the audit's make
# target runs one thread per job; thread count moves CPU floats only in the last bits).
IGNORED_KEYS = load.IGNORED_KEYS | {"threads"}
INDEX_KEYS = {"index.forget": "forget.seed", "index.retain": "forget.seed",
              "index.test": "dataset.limit_test"}
ROLES = ("original", "retrain", "unlearned")


def fail(msg: str) -> NoReturn:
    """Stops the command with a message (SystemExit, so no traceback)."""
    raise SystemExit(f"unlearnbench-audit: {msg}")


@dataclass
class Run:
    """One finished run: its folder, seed, flattened config, metrics and per-example scores."""

    path: Path
    seed: int
    config: Dict[str, str]
    metrics: pd.DataFrame
    scores: Dict[str, np.ndarray]

    @property
    def method_key(self) -> str:
        return json.dumps({k: v for k, v in self.config.items() if k.startswith("method.")},
                          sort_keys=True)

    def metric(self, role: str, name: str) -> float:
        rows = self.metrics[(self.metrics["role"] == role) & (self.metrics["metric"] == name)]
        return float(rows["value"].iloc[0]) if len(rows) else float("nan")


@dataclass
class Population:
    """Runs of one method configuration, sorted by seed."""

    label: str
    runs: List[Run] = field(default_factory=list)

    @property
    def seeds(self) -> List[int]:
        return [r.seed for r in self.runs]

    def stack(self, stat: str, role: str, split: str) -> np.ndarray:
        """[models, examples] of one statistic (``margin`` or ``loss``)."""
        return np.stack([r.scores[f"{stat}.{role}.{split}"] for r in self.runs]).astype(np.float64)

    def metric(self, role: str, name: str) -> np.ndarray:
        return np.array([r.metric(role, name) for r in self.runs])


def _read_run(folder: Path) -> Run:
    import yaml

    cfg_path = folder / ".hydra" / "config.yaml"
    if not cfg_path.exists():
        fail(f"{folder} has no .hydra/config.yaml: only runs made by the unlearnbench command "
             "can be grouped by config")
    config = {k: v for k, v in load.flatten(yaml.safe_load(cfg_path.read_text()) or {}).items()}
    try:
        metrics = read_checked(folder / "metrics.csv")
    except Damaged as err:
        fail(f"{err}. Re-run that run or leave its folder out.")
    with np.load(folder / "scores.npz") as z:
        scores = {k: z[k] for k in z.files}
    return Run(folder, int(metrics["seed"].iloc[0]), config, metrics, scores)


def find_runs(paths: Sequence[str]) -> List[Run]:
    """Every finished run (metrics.csv) under ``paths``; a run without scores.npz is refused."""
    folders = []
    for p in map(Path, paths):
        if not p.exists():
            fail(f"no such file or folder: {p}")
        folders += [f.parent for f in ([p] if p.is_file() else sorted(p.rglob("metrics.csv")))]
    if not folders:
        fail(f"no finished run (metrics.csv) under {', '.join(map(str, paths))}")
    missing = [str(f) for f in folders if not (f / "scores.npz").exists()]
    if missing:
        fail(f"{len(missing)} run(s) have no scores.npz (made before per-example scores; "
             f"rerun them with overwrite=true), e.g. {missing[0]}")
    return [_read_run(f) for f in sorted(set(folders))]


def _differing(configs: Sequence[Dict[str, str]]) -> List[str]:
    keys = set().union(*configs)
    return sorted(k for k in keys if len({c.get(k) for c in configs}) > 1)


def check_testbed(runs: Sequence[Run]) -> None:
    """All runs must share every config key but ``seed`` and ``method.*``, and one forget set."""
    configs = [{k: v for k, v in r.config.items()
                if k not in IGNORED_KEYS and not k.startswith("method.")} for r in runs]
    differ = _differing(configs)
    if differ:
        fail("the runs are not one testbed (they differ in more than seed and method): "
             f"{', '.join(differ)}. Audit each setting separately")
    for key, config_key in INDEX_KEYS.items():
        first = runs[0].scores[key]
        for r in runs[1:]:
            if not np.array_equal(r.scores[key], first):
                fail(f"{r.path} and {runs[0].path} score different examples ({key}); fix "
                     f"{config_key} (e.g. forget.seed=0) so every seed forgets the same examples")


def populations(runs: Sequence[Run], min_seeds: int) -> List[Population]:
    """Runs grouped by method configuration; each needs ``min_seeds`` distinct seeds."""
    groups: Dict[str, List[Run]] = {}
    for r in runs:
        groups.setdefault(r.method_key, []).append(r)
    names = [json.loads(json.loads(k).get("method.name", '"?"')) for k in groups]
    out = []
    for (key, members), name in zip(groups.items(), names):
        label = name
        if names.count(name) > 1:  # two configurations of one method: name what differs
            same = [json.loads(k) for k, n in zip(groups, names) if n == name]
            label += "(" + ",".join(f"{d[len('method.'):]}={json.loads(key)[d]}"
                                    for d in _differing(same)) + ")"
        out.append(_population(label, members, min_seeds))
    return sorted(out, key=lambda p: p.label)


def _population(label: str, members: List[Run], min_seeds: int) -> Population:
    by_seed = {}
    for r in sorted(members, key=lambda r: r.seed):
        if r.seed in by_seed:
            fail(f"seed {r.seed} of '{label}' appears twice: {by_seed[r.seed].path} and {r.path}")
        by_seed[r.seed] = r
    if len(by_seed) < min_seeds:
        fail(f"'{label}' has {len(by_seed)} seed(s) ({sorted(by_seed)}); the audit needs at "
             f"least {min_seeds} (run more seeds, or lower --min-seeds)")
    return Population(label, list(by_seed.values()))
