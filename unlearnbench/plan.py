"""The plan: every config group validated and built before any data loads or model trains."""

from __future__ import annotations

import logging
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from unlearnbench.cache import array_sha, file_sha256, training_material
from unlearnbench.checkpoints import read_state_dict
from unlearnbench.data.bundle import LOCATION_KEYS, DataBundle, check_dataset
from unlearnbench.data.forget import ForgetSet, ForgetSpec, build_forget_spec
from unlearnbench.engine import Recipe, RunContext, configure_threads
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators import Evaluator, build_evaluators
from unlearnbench.evaluators.base import objective_evaluators
from unlearnbench.loggers import CsvLogger, build_logger
from unlearnbench.methods import Method, build_method
from unlearnbench.models import build_model
from unlearnbench.plugins import load_plugins
from unlearnbench.registry import MODELS, coerce
from unlearnbench.tuning.tuned import read_tuned

log = logging.getLogger("unlearnbench")

# Top-level keys and their types (the rest are checked by their own groups).
TOP_LEVEL: Dict[str, Any] = {"seed": int, "overwrite": bool, "threads": Optional[int],
                             "save_models": bool, "original_path": Optional[str],
                             "oracle_path": Optional[str], "plugins": Optional[List[str]],
                             "objective": Optional[str], "tuned": Optional[str]}
CHECKPOINT_KEYS = {"original": "original_path", "oracle": "oracle_path"}


@dataclass
class CheckpointFile:
    """A user's trained state dict (``original_path`` / ``oracle_path``) and its sha256."""

    path: Path
    sha: str
    key: str  # the config key that named it


@dataclass
class Plan:
    """Everything built from the config before any expensive work."""

    method: Method
    spec: ForgetSpec
    evaluators: List[Evaluator]
    recipe: Recipe
    device: torch.device
    seed: int
    dataset: Dict[str, Any]
    model: Dict[str, Any]
    data_root: str
    experiment: str = ""
    objective: Optional[str] = None  # the unlearned model's metric the run returns
    progress: bool = True
    threads: Optional[int] = None
    save_models: bool = False
    checkpoints: Dict[str, CheckpointFile] = field(default_factory=dict)
    logger: Any = field(default_factory=CsvLogger)  # the logger group's: config, curves, metrics

    def start(self, cache: Any) -> RunContext:
        """Seeds every RNG, sets CPU threads and returns the run's context."""
        seed_everything(self.seed)
        configure_threads(self.threads)
        return RunContext(device=self.device, seed=self.seed, recipe=self.recipe,
                          show_progress=self.progress, cache=cache)

    def new_model(self, data: DataBundle) -> nn.Module:
        """A freshly initialised model of the configured architecture for ``data``."""
        return build_model(self.model, data.input_shape, data.num_classes)

    def training_material(self, data: DataBundle, forget: ForgetSet, stage: str,
                          prepared_rows: Optional[str] = None) -> Dict[str, Any]:
        """The cache-key material of the original (on ``data``) or the oracle (on D_r).

        The forget set joins the key of the oracle always, and of the original when the
        spec rewrites training labels; ``prepared_rows`` (hash of forget rows an evaluator
        rewrote, SPD's inject mode) joins the original's.
        """
        dataset = {k: v for k, v in self.dataset.items() if k not in LOCATION_KEYS}
        forget_part = None
        if stage == "oracle" or self.spec.modifies_train:
            forget_part = {"spec": self.spec.describe(),
                           "indices_sha": array_sha(forget.forget_idx.numpy().tobytes())}
        m = training_material(dataset, data.fingerprint(), self.model, self.recipe.cache_material(),
                              self.seed, forget_part)
        if prepared_rows is not None:
            m["prepared_forget_rows"] = prepared_rows
        return m

    def load_checkpoint(self, stage: str, model: nn.Module) -> Dict[str, torch.Tensor]:
        """The state dict in ``<stage>_path``, checked against ``model``'s shapes."""
        ckpt = self.checkpoints[stage]
        return read_state_dict(ckpt.path, ckpt.key, model)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but is not available; use device=cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError("device", f"'{name}' is not auto, cpu or cuda[:N]")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _top_level(c: Dict[str, Any]) -> Dict[str, Any]:
    top = {k: coerce(c.get(k), hint, k) for k, hint in TOP_LEVEL.items() if k in c}
    top["progress"] = progress_on(c.get("progress", "auto"))
    if top.get("seed") is not None and top["seed"] < 0:
        raise ConfigError("seed", f"must be a non-negative integer, got {top['seed']}")
    if top.get("threads") is not None and top["threads"] <= 0:
        raise ConfigError("threads", f"must be a positive count or null, got {top['threads']}")
    return top


def progress_on(value: Any) -> bool:
    """Whether to draw progress bars: ``auto`` (bars only on a terminal), ``true`` or ``false``.

    A log file or a sweep's captured stderr would otherwise fill with carriage returns.
    """
    if isinstance(value, bool):
        return value
    if str(value).lower() == "auto":
        return sys.stderr.isatty()
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise ConfigError("progress", f"must be auto, true or false, got {value!r}")


def _checkpoints(top: Dict[str, Any]) -> Dict[str, CheckpointFile]:
    out = {}
    for stage, key in CHECKPOINT_KEYS.items():
        if top.get(key):
            path = Path(top[key]).expanduser()
            if not path.is_file():
                raise ConfigError(key, f"no file at {path}")
            out[stage] = CheckpointFile(path, file_sha256(path), key)
    return out


def _with_objective(listed: List[str], objective: Optional[str]) -> List[str]:
    """eval.evaluators, plus whatever computes the objective when none of them does."""
    return list(listed) + (objective_evaluators(objective, listed) if objective else [])


def check_tuned(path: Optional[str], method: Optional[str]) -> None:
    """A ``+tuned=<file>`` run must use the method the file was tuned for."""
    if path is None:
        return
    tuned = read_tuned(path)
    if tuned["method"] != method:
        raise ConfigError("tuned", f"{path} holds parameters of method '{tuned['method']}', "
                                   f"but this run has method={method}")


def plan(cfg: DictConfig) -> Plan:
    """Builds and validates every component; raises ConfigError naming the key."""
    c = OmegaConf.to_container(cfg, resolve=True)
    top = _top_level(c)
    load_plugins(top.get("plugins") or ())  # before any registry look-up
    check_dataset(c["dataset"])
    check_tuned(top.get("tuned"), c["method"].get("name"))
    MODELS.validate(c["model"], "model", given=("input_shape", "num_classes"))
    return Plan(
        method=build_method(c["method"]),
        spec=build_forget_spec(c["forget"]),
        evaluators=build_evaluators(_with_objective(c["eval"]["evaluators"], top.get("objective")),
                                    c["eval"].get("params")),
        recipe=Recipe.from_cfg(c["train"]),
        device=resolve_device(str(c["device"])),
        seed=top["seed"], dataset=c["dataset"], model=c["model"], data_root=str(c["data_root"]),
        experiment=c.get("experiment_name") or "", objective=top.get("objective"),
        progress=top["progress"],
        threads=top.get("threads"), save_models=top.get("save_models", False),
        checkpoints=_checkpoints(top),
        logger=build_logger(c.get("logger"), c),
    )
