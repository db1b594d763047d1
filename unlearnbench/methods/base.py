"""The Method contract: one hook, ``unlearn(model, data, ctx) -> model``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Dict, Set

from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine.context import RunContext
from unlearnbench.errors import ConfigError


@dataclass
class UnlearnData:
    """What a method may see: forget / retain / validation splits (never the test split)."""

    forget: Split
    retain: Split
    val: Split
    forget_idx: Tensor
    retain_idx: Tensor
    num_classes: int

    @property
    def forget_share(self) -> float:
        """s = |D_f| / |D|, the quantity ∇τ derives its schedule from."""
        return len(self.forget) / (len(self.forget) + len(self.retain))


class Method:
    """Base class. Subclasses take their YAML keys as constructor arguments.

    Attributes:
        version: bumped whenever results change; written into every metrics.csv row.
        uses_oracle: the method's output is the retrained oracle (only ``retrain``); its
            unlearning time is then the oracle's training time.
    """

    registry_name = "base"
    version = "1"
    uses_oracle = False

    def unlearn(self, model: nn.Module, data: UnlearnData, ctx: RunContext) -> nn.Module:
        raise NotImplementedError


def constructor_keys(cls: type) -> Set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}


def build_method(cfg: Dict[str, Any]) -> Method:
    """Builds the configured method; a key it does not take is a config error."""
    from unlearnbench.registry import METHODS

    cfg = dict(cfg)
    cls = METHODS.get(cfg.pop("name"))
    unknown = set(cfg) - constructor_keys(cls)
    if unknown:
        raise ConfigError(f"method.{sorted(unknown)[0]}",
                          f"not a key of method '{cls.registry_name}'; it takes {sorted(constructor_keys(cls))}")
    return cls(**cfg)
