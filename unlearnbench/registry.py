"""Name registries with helpful misses (timm / lm-eval-harness style).

A component is added by decorating it with ``@METHODS.register("name")`` in a module
of its package; packages import all their modules, so no other line is needed.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Any, Callable, Dict, List


class UnknownNameError(KeyError):
    """Raised for a name no component registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry:
    """Maps names to classes or factories of one kind of component."""

    def __init__(self, kind: str, package: str, config_key: str):
        self.kind = kind
        self.package = package
        self.config_key = config_key
        self._entries: Dict[str, Any] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            obj.registry_name = name
            return obj

        return decorator

    def _load(self) -> None:
        # Importing every module of the package runs its @register decorators.
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def names(self) -> List[str]:
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        self._load()
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self._entries, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind} '{name}' (config key `{self.config_key}`).{hint} "
                f"Available: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


DATASETS = Registry("dataset", "unlearnbench.data.sources", "dataset.name")
MODELS = Registry("model", "unlearnbench.models", "model.name")
FORGET_SPECS = Registry("forget set", "unlearnbench.data.forget", "forget.name")
METHODS = Registry("method", "unlearnbench.methods", "method.name")
EVALUATORS = Registry("evaluator", "unlearnbench.evaluators", "eval.evaluators")
