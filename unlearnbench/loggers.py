"""The ``logger`` group: where a run's config, curves and metrics go besides its CSV files.

Every run writes metrics.csv and train_log.csv; ``csv`` (the default) adds nothing,
``tensorboard`` also writes an event file under ``<run dir>/tb/``.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any, Dict

import pandas as pd

from unlearnbench.errors import ConfigError

CURVE_COLUMNS = ("loss", "val_acc")  # train_log.csv columns drawn per epoch


class CsvLogger:
    """Writes nothing beyond metrics.csv and train_log.csv, which every run writes."""

    def log_run(self, out_dir: Path, train_log: pd.DataFrame, metrics: pd.DataFrame) -> None:
        """Nothing to add."""


class TensorBoardLogger:
    """An event file under ``<run dir>/tb/``: the config as text and hparams, tags
    ``curve/<role>/<loss|val_acc>`` by epoch and ``<role>/<metric>`` (metrics.csv's values)."""

    def __init__(self, config: Dict[str, Any]):
        self.config = flatten(config)

    def log_run(self, out_dir: Path, train_log: pd.DataFrame, metrics: pd.DataFrame) -> None:
        """Writes the run's event file (replacing none: each call adds a new file in tb/)."""
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(log_dir=str(out_dir / "tb")) as writer:
            writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in self.config.items()))
            for row in train_log.itertuples():
                for column in CURVE_COLUMNS:
                    value = getattr(row, column)
                    if value is not None and not pd.isna(value):
                        writer.add_scalar(f"curve/{row.role}/{column}", float(value), int(row.epoch))
            finals = {f"{r.role}/{r.metric}": float(r.value) for r in metrics.itertuples()
                      if not math.isnan(float(r.value))}
            for tag, value in finals.items():
                writer.add_scalar(tag, value, 0)
            unlearned = {k: v for k, v in finals.items() if k.startswith("unlearned/")}
            writer.add_hparams(self.config, {f"hparam/{k}": v for k, v in unlearned.items()},
                               run_name="hparams")


def flatten(config: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"train.lr": 0.05, ...}``: scalars kept, lists and None as JSON text (hparams take no others)."""
    flat: Dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def build_logger(group: Dict[str, Any], config: Dict[str, Any]):
    """The ``logger`` group's logger; a ConfigError naming ``logger`` before any data loads."""
    name = (group or {}).get("name", "csv")
    unknown = set(group or {}) - {"name"}
    if unknown:
        raise ConfigError(f"logger.{sorted(unknown)[0]}", "unknown key; a logger takes only name")
    if name == "csv":
        return CsvLogger()
    if name == "tensorboard":
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError("logger", "logger=tensorboard needs the tensorboard package: "
                              "pip install 'unlearnbench[tensorboard]'")
        return TensorBoardLogger(config)
    raise ConfigError("logger", f"'{name}' is not one of csv|tensorboard")
