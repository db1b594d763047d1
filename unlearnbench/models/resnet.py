"""ResNet-18: CIFAR variant (3x3 stem, no max-pool) or torchvision's ImageNet stem."""

from typing import Tuple

import torch.nn.functional as F
from torch import nn

from unlearnbench.errors import ConfigError
from unlearnbench.models import check_widths
from unlearnbench.registry import MODELS


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x), inplace=True)


class CifarResNet18(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, c_in = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            c_out = width * 2 ** i
            stages.append(nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)))
            c_in = c_out
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x)), inplace=True))
        return self.fc(self.pool(x).flatten(1))


def torchvision_init(model: CifarResNet18) -> CifarResNet18:
    """torchvision's ResNet initialisation on the CIFAR variant, as DEL's code gets it.

    DEL builds ``torchvision.models.resnet18`` (which draws convolutions from
    kaiming_normal(fan_out, relu)) and then swaps in a fresh 3x3 stem conv, which keeps
    PyTorch's default draw (DEL-Unlearning unlearning_models.py:103-106). BatchNorm is
    (1, 0) and the classifier PyTorch's default either way.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module is not model.conv1:
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model


@MODELS.register("resnet18")
def resnet18(input_shape: Tuple[int, ...], num_classes: int, stem: str = "cifar",
             width: int = 64, init: str = "default") -> nn.Module:
    """``stem: cifar`` (DEL) or ``imagenet`` (torchvision's, as ∇τ's official code uses).

    ``init: default`` keeps each stem's usual draw (PyTorch's module defaults for ``cifar``,
    torchvision's for ``imagenet``); ``init: torchvision`` gives the ``cifar`` stem
    torchvision's draw too (DEL's models and DEL's reset target θ_init).
    """
    if init not in ("default", "torchvision"):
        raise ConfigError("model.init", f"must be 'default' or 'torchvision', got '{init}'")
    check_widths("model.width", width)
    if stem == "cifar":
        model = CifarResNet18(input_shape[0], num_classes, width)
        return torchvision_init(model) if init == "torchvision" else model
    if stem == "imagenet":
        from torchvision.models import resnet18 as tv_resnet18

        model = tv_resnet18(num_classes=num_classes)
        if input_shape[0] != 3:
            model.conv1 = nn.Conv2d(input_shape[0], 64, 7, 2, 3, bias=False)
        return model
    raise ConfigError("model.stem", f"must be 'cifar' or 'imagenet', got '{stem}'")
