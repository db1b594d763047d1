"""The ``logger`` group: csv adds nothing; tensorboard writes an event file with the config,
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
    cfg = run_cfg(["logger=csv", "logger.name=mlflow"])
    with pytest.raises(ConfigError, match="logger") as err:
        pipeline.run(cfg)
    assert err.value.key == "logger"
    with pytest.raises(ConfigError, match="logger.dir"):
        build_logger({"name": "csv", "dir": "x"}, {})


def test_missing_tensorboard_package_names_logger(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match="unlearnbench\\[tensorboard\\]") as err:
        build_logger({"name": "tensorboard"}, {})
    assert err.value.key == "logger"


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
