"""Models: registered factories ``build(input_shape, num_classes, **yaml_keys) -> nn.Module``."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import nn

from unlearnbench.registry import MODELS


def build_model(cfg: Dict[str, Any], input_shape: Tuple[int, ...], num_classes: int) -> nn.Module:
    """Builds the configured model; input shape and class count come from the dataset."""
    return MODELS.build(cfg, "model", input_shape=tuple(input_shape), num_classes=num_classes)


def classifier_of(model: nn.Module) -> nn.Module:
    """The final linear layer (DEL keeps it always trainable); every model names it ``fc``."""
    return model.fc
