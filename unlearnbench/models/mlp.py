"""Multi-layer perceptron on flattened inputs."""

from typing import Sequence, Tuple

import math
from torch import nn

from unlearnbench.errors import ConfigError
from unlearnbench.models import check_widths
from unlearnbench.registry import MODELS


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int, dropout: float):
        super().__init__()
        layers, width = [nn.Flatten()], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


@MODELS.register("mlp")
def mlp(input_shape: Tuple[int, ...], num_classes: int, hidden: Sequence[int] = (512, 256),
        dropout: float = 0.0) -> nn.Module:
    check_widths("model.hidden", *hidden)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError("model.dropout", f"must be in [0, 1), got {dropout}")
    return MLP(math.prod(input_shape), list(hidden), num_classes, dropout)
