"""The ``logger`` group: csv adds nothing; tensorboard, mlflow and wandb get the config,
the curves of train_log.csv and the final metrics."""

import pytest

from unlearnbench.errors import ConfigError
from unlearnbench.loggers import build_logger, flatten


def test_csv_is_the_default_and_writes_nothing_else(run_pipeline, tmp_path):
    run_pipeline(name="a")
    assert not (tmp_path / "a" / "tb").exists()
    assert (tmp_path / "a" / "train_log.csv").exists()


def test_unknown_logger_or_key_is_a_config_error_before_data_loads(run_cfg, monkeypatch):
    from unlearnbench import pipeline

    monkeypatch.setattr(pipeline, "load_data", lambda *a: pytest.fail("data loaded"))
    cfg = run_cfg(["logger=csv", "logger.name=comet"])
    with pytest.raises(ConfigError, match="logger") as err:
        pipeline.run(cfg)
    assert err.value.key == "logger"
    with pytest.raises(ConfigError, match="logger.dir"):
        build_logger({"name": "csv", "dir": "x"}, {})


@pytest.mark.parametrize("name", ["tensorboard", "mlflow", "wandb"])
def test_missing_package_names_logger_and_extra(monkeypatch, name):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda mod, *a: None if mod == name else real(mod, *a))
    with pytest.raises(ConfigError, match=f"unlearnbench\\[{name}\\]") as err:
        build_logger({"name": name}, {})
    assert err.value.key == "logger"


def test_logger_keys_are_checked_per_logger():
    with pytest.raises(ConfigError, match="logger.project"):
        build_logger({"name": "mlflow", "project": "x"}, {})


def test_flatten_keeps_scalars_and_writes_the_rest_as_json():
    assert flatten({"train": {"lr": 0.1, "max_batches": None}, "eval": {"evaluators": ["a", "b"]}, "seed": 0}) == {
        "train.lr": 0.1, "train.max_batches": "null", "eval.evaluators": '["a", "b"]', "seed": 0}


def test_tensorboard_event_file_holds_curves_and_metrics(run_pipeline, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    frame = run_pipeline(["logger=tensorboard", "train.epochs=3"], name="tb")
    events = list((tmp_path / "tb" / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"curve/original/loss", "curve/retrain/val_acc", "curve/unlearned/loss",
            "unlearned/forget_acc", "retrain/test_acc"} <= tags
    assert [e.step for e in acc.Scalars("curve/original/loss")] == [1, 2, 3]
    forget_acc = frame[(frame.role == "unlearned") & (frame.metric == "forget_acc")].value.iloc[0]
    assert acc.Scalars("unlearned/forget_acc")[0].value == pytest.approx(forget_acc, abs=1e-6)
    assert "config" in acc.Tags()["tensors"] or "config/text_summary" in acc.Tags()["tensors"]


def test_mlflow_file_store_holds_params_curves_and_metrics(run_pipeline, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    # MLflow 3 keeps its file store only on request; a sqlite store would need SQLAlchemy too
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    frame = run_pipeline(["logger=mlflow", f"logger.tracking_uri={uri}", "train.epochs=3"], name="ml")
    client = mlflow.tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name("unlearnbench")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["train.epochs"] == "3"
    assert run.data.tags["run_dir"] == str(tmp_path / "ml")
    history = client.get_metric_history(run.info.run_id, "original/loss")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert "retrain/val_acc" in run.data.metrics
    forget_acc = frame[(frame.role == "unlearned") & (frame.metric == "forget_acc")].value.iloc[0]
    assert run.data.metrics["unlearned/forget_acc"] == pytest.approx(forget_acc)


def test_wandb_offline_run_lands_under_the_run_dir(run_pipeline, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    frame = run_pipeline(["logger=wandb"], name="wb")
    (record_file,) = (tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb")
    # wandb ≥ 0.19 has no Python reader for its record log; its protobuf records carry
    # keys and JSON values as plain bytes, so check config, a curve axis and a final value.
    records = record_file.read_bytes()
    forget_acc = frame[(frame.role == "unlearned") & (frame.metric == "forget_acc")].value.iloc[0]
    assert b"train.lr" in records and b"original/epoch" in records and b"original/loss" in records
    at = records.index(b"unlearned/forget_acc")
    assert repr(float(forget_acc)).encode() in records[at:at + 64]


def test_wandb_mode_is_checked_in_plan(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    # the mode is checked without importing wandb, so this runs where it is not installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda mod, *a: object() if mod == "wandb" else real(mod, *a))
    assert build_logger({"name": "wandb"}, {"seed": 0}).mode == "offline"
    with pytest.raises(ConfigError, match="logger.mode"):
        build_logger({"name": "wandb", "mode": "cloud"}, {})
