"""Config helpers: the resolver run dirs use, and composing configs outside the command."""

from __future__ import annotations

import hashlib
import json
import re
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


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def is_safe_name(name: str) -> bool:
    """True if ``name`` can be one folder name: letters, digits, ``_.+-``, no ``..``."""
    return bool(SAFE_NAME.fullmatch(name)) and ".." not in name


def folder_name(name: object) -> str:
    """``name`` as one folder of a run dir: unsafe characters become ``_``.

    Run dirs are built from group names before any code of ours runs, so a name such as
    ``../../x`` must not reach the path (it would put the run outside ``output_root``).
    Registered names are safe (``Registry.register`` checks), so they map to themselves;
    any other name is refused by the registry, naming its key, once the run starts.
    """
    text = str(name)
    return text if is_safe_name(text) else re.sub(r"[^A-Za-z0-9_+-]", "_", text) or "_"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("ub_hash"):
        OmegaConf.register_new_resolver("ub_hash", _short_hash)
    if not OmegaConf.has_resolver("ub_name"):
        OmegaConf.register_new_resolver("ub_name", folder_name)


def compose(overrides: Sequence[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """The config ``unlearnbench <overrides>`` would run (for tests and notebooks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from unlearnbench.tuning.tuned import expand_tuned

    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=config_dir()):
        return hydra_compose("config", overrides=expand_tuned(overrides),
                             return_hydra_config=return_hydra_config)
