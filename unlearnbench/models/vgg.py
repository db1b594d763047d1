"""VGG-16 with batch norm, CIFAR variant (one 512-d linear head, no 4096-wide layers)."""

from typing import Tuple

from torch import nn

from unlearnbench.registry import MODELS

_CFG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16BN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, spatial: int):
        super().__init__()
        layers, c = [], in_channels
        for v in _CFG16:
            if v == "M":
                # Stop pooling once the map is 1x1 so 8x8 or 28x28 inputs still fit.
                if spatial > 1:
                    layers.append(nn.MaxPool2d(2))
                    spatial //= 2
                continue
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c = v
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


@MODELS.register("vgg16_bn")
def vgg16_bn(input_shape: Tuple[int, ...], num_classes: int) -> nn.Module:
    return VGG16BN(input_shape[0], num_classes, min(input_shape[-2:]))
