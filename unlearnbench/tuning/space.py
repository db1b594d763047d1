"""Search spaces: ``conf/search/<method>.yaml`` in Hydra's sweep grammar -> Optuna distributions.

Each line maps a dotted ``method.*`` key to one sweep, written as for hydra-optuna-sweeper's
``params`` (so the files stay usable by that sweeper too):

- ``interval(lo, hi)``: a float in [lo, hi]; ``int(interval(lo, hi))`` an integer;
- ``range(start, stop[, step])``: integers as Python's ``range`` (``stop`` excluded);
- ``choice(a, b, ...)``: one of the listed values;
- ``tag(log, ...)`` around an interval: sampled on a log scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import yaml

from unlearnbench.config import config_dir
from unlearnbench.errors import ConfigError


def search_file(method: str) -> Path:
    """The packaged search space of ``method`` (``conf/search/<method>.yaml``)."""
    return Path(config_dir()) / "search" / f"{method}.yaml"


def read_space(path: Path) -> Dict[str, str]:
    """The ``params`` block of a search-space file: dotted key -> sweep expression."""
    if not path.is_file():
        raise ConfigError("method", f"no search space at {path}: this method has nothing to tune, "
                                    "or pass --search FILE")
    params = (yaml.safe_load(path.read_text()) or {}).get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError("method", f"{path} needs a non-empty 'params' mapping")
    bad = [k for k in params if not str(k).startswith("method.")]
    if bad:
        raise ConfigError("method", f"{path}: only method.* keys can be searched, got {bad}")
    return {str(k): str(v) for k, v in params.items()}


def distribution(key: str, expression: str):
    """The Optuna distribution a sweep expression describes; ConfigError if it is not one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    try:
        sweep = OverridesParser.create().parse_override(f"{key}={expression}").value()
    except Exception as e:  # Hydra's grammar errors carry the reason
        raise ConfigError(key, f"search space '{expression}' does not parse: {e}") from e
    if isinstance(sweep, ChoiceSweep):
        return CategoricalDistribution(list(sweep.list))
    if isinstance(sweep, RangeSweep) and all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step)):
        last = sweep.start + (sweep.stop - 1 - sweep.start) // sweep.step * sweep.step
        return IntDistribution(sweep.start, last, step=sweep.step)
    if isinstance(sweep, IntervalSweep):
        log = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return IntDistribution(sweep.start, sweep.end, log=log)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log)
    raise ConfigError(key, f"'{expression}' is not a search space: use interval(lo, hi), "
                           "int(interval(lo, hi)), range(start, stop) over integers or choice(...)")


def distributions(space: Dict[str, str]) -> Dict[str, Any]:
    """Every key of a search space with its Optuna distribution."""
    return {key: distribution(key, expr) for key, expr in space.items()}


def suggest(trial, key: str, dist) -> Any:
    """One value for ``key`` from ``trial`` through Optuna's public suggest API."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def check_space(space: Dict[str, Any], cfg, overrides) -> None:
    """ConfigError if a searched key is not in the method's config or is also overridden."""
    from omegaconf import OmegaConf

    for key in space:
        if OmegaConf.select(cfg, key, default="<missing>") == "<missing>":
            raise ConfigError(key, f"searched, but method '{cfg.method.name}' has no such key")
    fixed = {ov.split("=", 1)[0].lstrip("+~") for ov in overrides if "=" in ov}
    both = sorted(fixed & set(space))
    if both:
        raise ConfigError(both[0], "is both searched and overridden; drop the override or the search key")
