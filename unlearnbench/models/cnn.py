"""A small CNN for 8x8 to 32x32 images (two conv blocks, global pooling)."""

from typing import Tuple

from torch import nn

from unlearnbench.models import check_widths
from unlearnbench.registry import MODELS


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int, small_input: bool):
        super().__init__()
        # 8x8 digits cannot afford two 2x poolings before the head; 28/32 px images can.
        pool = nn.Identity() if small_input else nn.MaxPool2d(2)
        self.features = nn.Sequential(
            _block(in_channels, width), pool,
            _block(width, 2 * width), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


@MODELS.register("cnn")
def cnn(input_shape: Tuple[int, ...], num_classes: int, width: int = 32) -> nn.Module:
    check_widths("model.width", width)
    return SmallCNN(input_shape[0], num_classes, width, small_input=input_shape[-1] < 16)
