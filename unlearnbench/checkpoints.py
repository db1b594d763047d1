"""Users' trained models in and out: state dicts read safely and checked against the model."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import torch
from torch import nn

from unlearnbench.errors import ConfigError


def read_state_dict(path: Path, key: str, model: nn.Module) -> Dict[str, torch.Tensor]:
    """A state dict from ``path`` (tensors only: ``weights_only``) that fits ``model``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unreadable file is the same user error)
        raise ConfigError(key, f"{path} is not a readable torch state dict ({err.__class__.__name__}: "
                               f"{str(err).splitlines()[0][:200]})") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(key, f"{path} does not hold a state dict (name -> tensor)")
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
            f"wrong shapes {wrong[:3]}" if wrong else ""]))
        raise ConfigError(key, f"{path} does not fit the configured model ({detail}); "
                               "check model=..., its keys and the dataset")
    return state
