"""Components from outside the package: plugin modules and installed entry points.

A plugin is any importable module whose import registers components with the usual
decorators (``@METHODS.register("mymethod")`` ...). Two ways in, one effect:

* the ``plugins`` config key, a list of module names (``plugins=[mymethods]``), imported
  before the plan is built; the working directory is importable, as with ``python -m``;
* the entry-point group ``unlearnbench.plugins`` of installed packages, loaded the first
  time plugins are loaded in a process.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from importlib.metadata import entry_points
from typing import Iterable, List

from unlearnbench.errors import ConfigError

log = logging.getLogger("unlearnbench")
ENTRY_POINT_GROUP = "unlearnbench.plugins"
_entry_points_loaded = False


def load_entry_points() -> List[str]:
    """Imports every installed ``unlearnbench.plugins`` entry point once; returns their names."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return []
    _entry_points_loaded = True
    names = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
        names.append(ep.name)
        log.debug("loaded plugin entry point %s (%s)", ep.name, ep.value)
    return names


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Imports installed entry points and the named plugin modules.

    Raises:
        ConfigError: a module in ``plugins`` cannot be imported (naming it and why).
    """
    load_entry_points()
    for name in modules or ():
        if not isinstance(name, str) or not name:
            raise ConfigError("plugins", f"entries must be module names, got {name!r}")
        try:
            _import(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):
                raise ConfigError("plugins", f"cannot import plugin module '{name}' (not on the "
                                             f"Python path, nor in {os.getcwd()})") from err
            raise


def _import(name: str) -> None:
    # A console script's sys.path lacks the working directory (python -m has it); a user's
    # mymethods.py beside their configs must import the same either way.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    importlib.import_module(name)
