"""The ``logger`` group: where a run's config, curves and metrics go besides its CSV files.

Every run writes metrics.csv and train_log.csv; ``csv`` (the default) adds nothing,
``tensorboard`` also writes an event file under ``<run dir>/tb/``, ``mlflow`` logs one MLflow run
and ``wandb`` one Weights & Biases run (offline by default, under the run dir). Each sends the same
three things: the flattened config, the curves of train_log.csv (``<role>/<loss|val_acc>`` by epoch)
and the final metrics.csv values (``<role>/<metric>``), all after the run, so a cache hit's curves
are sent too.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any, Dict, Optional

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
            for tag, value, epoch in curve_points(train_log):
                writer.add_scalar(f"curve/{tag}", value, epoch)
            finals = final_values(metrics)
            for tag, value in finals.items():
                writer.add_scalar(tag, value, 0)
            unlearned = {k: v for k, v in finals.items() if k.startswith("unlearned/")}
            writer.add_hparams(self.config, {f"hparam/{k}": v for k, v in unlearned.items()},
                               run_name="hparams")


def curve_points(train_log: pd.DataFrame):
    """``(tag, value, epoch)`` for each non-empty loss/val_acc of train_log.csv; tags ``<role>/<column>``."""
    for row in train_log.itertuples():
        for column in CURVE_COLUMNS:
            value = getattr(row, column)
            if value is not None and not pd.isna(value):
                yield f"{row.role}/{column}", float(value), int(row.epoch)


def final_values(metrics: pd.DataFrame) -> Dict[str, float]:
    """metrics.csv as ``{"<role>/<metric>": value}``, NaNs left out (trackers reject or hide them)."""
    return {f"{r.role}/{r.metric}": float(r.value) for r in metrics.itertuples()
            if not math.isnan(float(r.value))}


class MlflowLogger:
    """One MLflow run per unlearnbench run: params = the flattened config, metrics = the curves
    (step = epoch) and the final values. ``tracking_uri`` None keeps MLflow's own default
    (``MLFLOW_TRACKING_URI`` or its local store)."""

    def __init__(self, config: Dict[str, Any], tracking_uri: Optional[str] = None,
                 experiment: str = "unlearnbench"):
        self.config = flatten(config)
        self.tracking_uri = tracking_uri
        self.experiment = experiment

    def log_run(self, out_dir: Path, train_log: pd.DataFrame, metrics: pd.DataFrame) -> None:
        """Logs the run and tags it with the run dir, so a tracker row leads back to the CSV files."""
        import mlflow

        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_experiment(self.experiment)
        with mlflow.start_run(run_name=out_dir.name):
            mlflow.set_tag("run_dir", str(out_dir))
            # MLflow caps a param value at 6000 characters; a long list override is cut, not refused
            mlflow.log_params({k: str(v)[:6000] for k, v in self.config.items()})
            for tag, value, epoch in curve_points(train_log):
                mlflow.log_metric(tag, value, step=epoch)
            mlflow.log_metrics(final_values(metrics))


class WandbLogger:
    """One Weights & Biases run: config, curves (x axis ``epoch`` per role) and the final values in
    the summary. ``mode`` offline (the default) writes under ``<run dir>/wandb/`` and needs no account;
    ``wandb sync`` uploads it later."""

    def __init__(self, config: Dict[str, Any], project: str = "unlearnbench", mode: str = "offline"):
        if mode not in ("offline", "online", "disabled"):
            raise ConfigError("logger.mode", f"'{mode}' is not one of offline|online|disabled")
        self.config = flatten(config)
        self.project = project
        self.mode = mode

    def log_run(self, out_dir: Path, train_log: pd.DataFrame, metrics: pd.DataFrame) -> None:
        """Logs the run; curves use a per-role epoch axis because roles' epochs are not one timeline."""
        import wandb

        run = wandb.init(project=self.project, mode=self.mode, dir=str(out_dir), name=out_dir.name,
                         config=self.config, reinit=True)
        for role in train_log.role.unique() if len(train_log) else []:
            run.define_metric(f"{role}/*", step_metric=f"{role}/epoch")
        for tag, value, epoch in curve_points(train_log):
            run.log({tag: value, f"{tag.split('/')[0]}/epoch": epoch})
        run.summary.update(final_values(metrics))
        run.finish()


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


# name -> (class, its keys besides name, the pip extra and module it needs)
LOGGERS = {
    "csv": (None, (), None),
    "tensorboard": (TensorBoardLogger, (), "tensorboard"),
    "mlflow": (MlflowLogger, ("tracking_uri", "experiment"), "mlflow"),
    "wandb": (WandbLogger, ("project", "mode"), "wandb"),
}


def build_logger(group: Dict[str, Any], config: Dict[str, Any]):
    """The ``logger`` group's logger; a ConfigError naming ``logger`` (or the bad key) before any
    data loads, also when the logger's package is not installed."""
    group = dict(group or {})
    name = group.pop("name", "csv")
    if name not in LOGGERS:
        raise ConfigError("logger", f"'{name}' is not one of {'|'.join(LOGGERS)}")
    cls, keys, extra = LOGGERS[name]
    unknown = set(group) - set(keys)
    if unknown:
        allowed = f"name, {', '.join(keys)}" if keys else "only name"
        raise ConfigError(f"logger.{sorted(unknown)[0]}", f"unknown key; logger={name} takes {allowed}")
    if cls is None:
        return CsvLogger()
    if importlib.util.find_spec(extra) is None:
        raise ConfigError("logger", f"logger={name} needs the {extra} package: "
                          f"pip install 'unlearnbench[{extra}]'")
    return cls(config, **group)
