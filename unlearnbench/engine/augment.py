"""Batch augmentation on the device: random crop with padding and horizontal flip."""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def augment_batch(x: Tensor, mode: str, generator: Optional[torch.Generator] = None,
                  pad: int = 4) -> Tensor:
    """``crop_flip``: pad-4 random crop + flip per image; ``flip``: flip only; ``none``."""
    if mode == "none" or x.ndim != 4:
        return x
    n = x.shape[0]
    flip = torch.rand(n, generator=generator).lt(0.5).to(x.device)
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    if mode == "flip":
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad))  # zero padding, as torchvision RandomCrop(padding=4)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    # Gather rows then columns with per-image offsets: one batched op, no Python per image.
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    c = x.shape[1]
    out = padded.gather(2, rows.expand(n, c, h, padded.shape[-1]))
    return out.gather(3, cols.expand(n, c, h, w))
