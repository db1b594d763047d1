"""Batch augmentation on the device: random crop with padding and horizontal flip.

The random draws are separated from the pixel work so that the training loop can draw a
whole epoch's worth on the host at once and move it to the device in one copy: drawing
per batch with a CPU generator and copying to CUDA would stall the step loop once per
batch (a pageable host-to-device copy synchronises).
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

MODES = ("none", "flip", "crop_flip")


@dataclass
class AugmentDraws:
    """Per-example random choices: ``flip`` bool [N]; crop offsets ``dy``, ``dx`` int [N] or None."""

    flip: Tensor
    dy: Optional[Tensor] = None
    dx: Optional[Tensor] = None

    def to(self, device: torch.device, non_blocking: bool = False) -> "AugmentDraws":
        def move(t: Optional[Tensor]) -> Optional[Tensor]:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return AugmentDraws(move(self.flip), move(self.dy), move(self.dx))

    def pin_memory(self) -> "AugmentDraws":
        def pin(t: Optional[Tensor]) -> Optional[Tensor]:
            return None if t is None else t.pin_memory()

        return AugmentDraws(pin(self.flip), pin(self.dy), pin(self.dx))

    def __getitem__(self, sl) -> "AugmentDraws":
        return AugmentDraws(self.flip[sl], None if self.dy is None else self.dy[sl],
                            None if self.dx is None else self.dx[sl])


def draw(n: int, mode: str, generator: Optional[torch.Generator] = None, pad: int = 4
         ) -> Optional[AugmentDraws]:
    """The random choices for ``n`` images (on the host), in a fixed order: flips, dy, dx."""
    if mode == "none":
        return None
    flip = torch.rand(n, generator=generator).lt(0.5)
    if mode == "flip":
        return AugmentDraws(flip)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    return AugmentDraws(flip, dy, dx)


def apply(x: Tensor, d: Optional[AugmentDraws], pad: int = 4) -> Tensor:
    """Flips, then crops each image of ``x`` [N, C, H, W] at its drawn offset; one batched op."""
    if d is None or x.ndim != 4:
        return x
    n = x.shape[0]
    x = torch.where(d.flip.view(-1, 1, 1, 1), x.flip(3), x)
    if d.dy is None:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad))  # zero padding, as torchvision RandomCrop(padding=4)
    # Gather rows then columns with per-image offsets: no Python per image.
    rows = (d.dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (d.dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    c = x.shape[1]
    out = padded.gather(2, rows.expand(n, c, h, padded.shape[-1]))
    return out.gather(3, cols.expand(n, c, h, w))


def augment_batch(x: Tensor, mode: str, generator: Optional[torch.Generator] = None,
                  pad: int = 4) -> Tensor:
    """``crop_flip``: pad-4 random crop + flip per image; ``flip``: flip only; ``none``.

    Draws on the host for this batch only; the training loop uses ``draw`` once per
    epoch instead (see the module docstring).
    """
    if mode == "none" or x.ndim != 4:
        return x
    return apply(x, draw(x.shape[0], mode, generator, pad).to(x.device), pad)
