"""Models: registered factories ``build(input_shape, num_classes, **yaml_keys) -> nn.Module``."""

from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple

from torch import nn

from unlearnbench.errors import ConfigError


def build_model(cfg: Dict[str, Any], input_shape: Tuple[int, ...], num_classes: int) -> nn.Module:
    """Builds the configured model; input shape and class count come from the dataset."""
    from unlearnbench.registry import MODELS

    cfg = dict(cfg)
    factory = MODELS.get(cfg.pop("name"))
    params = set(inspect.signature(factory).parameters) - {"input_shape", "num_classes"}
    unknown = set(cfg) - params
    if unknown:
        raise ConfigError(f"model.{sorted(unknown)[0]}",
                          f"not a key of model '{factory.registry_name}'; it takes {sorted(params)}")
    return factory(input_shape=tuple(input_shape), num_classes=num_classes, **cfg)


def classifier_of(model: nn.Module) -> nn.Module:
    """The final linear layer (DEL keeps it always trainable); every model names it ``fc``."""
    return model.fc
