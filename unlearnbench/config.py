"""Config helpers: the resolver run dirs use, and composing configs outside the command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig, OmegaConf


def config_dir() -> str:
    """The packaged copy of conf/ after a wheel install, else the repository's conf/."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return str(packaged if packaged.is_dir() else here.parent / "conf")


def _short_hash(*parts) -> str:
    """A stable hash of config subtrees, so run dirs separate hyperparameter variants."""
    # Unset optional parts (null checkpoint paths) are left out, so adding such a part keeps
    # every existing run dir where it was.
    plain = [OmegaConf.to_container(p, resolve=True) if OmegaConf.is_config(p) else p
             for p in parts if p is not None]
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:8]


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("ub_hash"):
        OmegaConf.register_new_resolver("ub_hash", _short_hash)


def compose(overrides: Sequence[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """The config ``unlearnbench <overrides>`` would run (for tests and notebooks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from unlearnbench.tuning.tuned import expand_tuned

    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=config_dir()):
        return hydra_compose("config", overrides=expand_tuned(overrides),
                             return_hydra_config=return_hydra_config)
