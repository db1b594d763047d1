"""Name registries with helpful misses (timm / lm-eval-harness style), and the one builder.

A component is added by decorating it with ``@METHODS.register("name")`` in a module of
its package (packages import all their modules) or in a plugin module (see
``unlearnbench.plugins``). ``Registry.build`` is the only place a config block becomes a
component: it looks the name up, refuses unknown keys and coerces values by the
constructor's annotations, each error naming the config key to change.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import pkgutil
import typing
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from unlearnbench.errors import ConfigError


class UnknownNameError(KeyError):
    """Raised for a name no component registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


_NO_HINT = object()


def parameters(obj: Any) -> Dict[str, Any]:
    """Keyword parameters of a class's ``__init__`` (or a factory) -> type hint.

    A ``**kwargs`` constructor forwards to its parent's, whose parameters count too, so a
    subclass names only the keys it adds.
    """
    out: Dict[str, Any] = {}
    chain = [c for c in obj.__mro__ if "__init__" in vars(c)] if inspect.isclass(obj) else [obj]
    for fn in (c.__init__ if inspect.isclass(c) else c for c in chain):
        if fn is object.__init__:
            break
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 (unresolvable annotations: no coercion, keys still checked)
            hints = {}
        sig = inspect.signature(fn)
        for name, p in sig.parameters.items():
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                out.setdefault(name, hints.get(name, _NO_HINT))
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return out


def coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against the type hint ``hint``; ConfigError names ``key``."""
    if hint is _NO_HINT or hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(key, f"must be one of {list(args)}, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if hint is float:
        # NaN slips through every `<= 0` check and infinity is never a setting: both refused here.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(key, f"must be a finite number, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    if hint is list or origin in (list, tuple) or _is_sequence(hint):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {value!r}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a mapping, got {value!r}")
    return value


def _is_sequence(hint: Any) -> bool:
    import collections.abc as abc

    return typing.get_origin(hint) in (abc.Sequence, list, tuple)


class Registry:
    """Maps names to classes or factories of one kind of component."""

    def __init__(self, kind: str, package: str, config_key: str):
        self.kind = kind
        self.package = package
        self.config_key = config_key  # where the name is chosen, e.g. ``method.name``
        self._entries: Dict[str, Any] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[Any], Any]:
        from unlearnbench.config import is_safe_name

        if not is_safe_name(name):  # names become folders of run dirs
            raise ValueError(f"{self.kind} name {name!r}: use letters, digits and _ . + - only")

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

    def keys_of(self, name: str, given: Tuple[str, ...] = ()) -> Dict[str, Any]:
        """The config keys component ``name`` takes -> type hint (``given`` are not config keys)."""
        return {k: v for k, v in parameters(self.get(name)).items() if k not in given}

    def validate(self, cfg: Mapping[str, Any], prefix: str, given: Tuple[str, ...] = (),
                 extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Checks a config block without building it; returns its coerced keyword arguments.

        Args:
            cfg: the block, ``name`` included.
            prefix: its config path, e.g. ``method``, for error messages.
            given: parameters the caller passes itself (e.g. ``input_shape``).
            extra: keys handled by the caller, with their type hints (e.g. dataset splits).
        """
        cfg = dict(cfg)
        name = cfg.pop("name", None)
        if name is None:
            raise ConfigError(f"{prefix}.name", f"no {self.kind} chosen")
        keys = {**self.keys_of(name, given), **(extra or {})}
        unknown = sorted(set(cfg) - set(keys))
        if unknown:
            raise ConfigError(f"{prefix}.{unknown[0]}",
                              f"not a key of {self.kind} '{name}'; it takes {sorted(keys)}")
        out = {k: coerce(v, keys[k], f"{prefix}.{k}") for k, v in cfg.items()}
        for k, v in out.items():  # numpy and torch refuse negative seeds with a raw error
            if (k == "seed" or k.endswith("_seed")) and isinstance(v, int) and v < 0:
                raise ConfigError(f"{prefix}.{k}", f"seeds are non-negative integers, got {v}")
        return out

    def build(self, cfg: Mapping[str, Any], prefix: str, **given: Any) -> Any:
        """Validates ``cfg`` and constructs the component with ``given`` passed as well."""
        kwargs = self.validate(cfg, prefix, tuple(given))
        return self.get(cfg["name"])(**given, **kwargs)


DATASETS = Registry("dataset", "unlearnbench.data.sources", "dataset.name")
MODELS = Registry("model", "unlearnbench.models", "model.name")
FORGET_SPECS = Registry("forget set", "unlearnbench.data.forget", "forget.name")
METHODS = Registry("method", "unlearnbench.methods", "method.name")
EVALUATORS = Registry("evaluator", "unlearnbench.evaluators", "eval.evaluators")
