"""End-to-end pipeline on the real configs (digits, debug=smoke)."""

import numpy as np
import pandas as pd
import pytest

from conftest import metric
from unlearnbench.results import COLUMNS


def test_default_run_writes_tidy_metrics(run_pipeline, tmp_path):
    frame = run_pipeline()
    for col in COLUMNS + ["unlearn_s", "method_version", "package_version", "git_commit"]:
        assert col in frame.columns
    assert set(frame.role) == {"original", "retrain", "unlearned"}
    assert metric(frame, "forget_acc_gap", "retrain") == 0.0
    assert metric(frame, "acc_avg_gap", "retrain") == 0.0
    forget = np.load(tmp_path / "run" / "forget_indices.npy")
    assert len(forget) == frame.forget_size.iloc[0]
    with np.load(tmp_path / "run" / "scores.npz") as scores:  # per-example outputs for audits
        assert np.array_equal(scores["index.forget"], forget)
        assert len(scores["index.retain"]) == len(forget)
        assert not np.isin(scores["index.retain"], forget).any()
        for role in ("original", "retrain", "unlearned"):
            for split in ("forget", "test"):
                loss = scores[f"loss.{role}.{split}"]
                assert loss.mean() == pytest.approx(metric(frame, f"{split}_loss", role), rel=1e-4)
                # margin > 0 means p_y > 1/2, which implies the true class is the argmax
                correct = scores[f"margin.{role}.{split}"] > 0
                assert correct.mean() <= metric(frame, f"{split}_acc", role) + 1e-9


def test_finished_run_is_skipped_unless_overwrite(run_cfg):
    from unlearnbench.pipeline import run

    first = run(run_cfg()).metrics_path
    stamp = first.stat().st_mtime_ns
    again = run(run_cfg())
    assert again.skipped and again.models == {} and len(again.metrics) > 0
    assert first.stat().st_mtime_ns == stamp
    assert run(run_cfg(["overwrite=true"])).metrics_path == first


def test_oracle_and_original_are_cached_across_methods(run_pipeline):
    a = run_pipeline(["method=finetune"], name="a")
    b = run_pipeline(["method=gradient_ascent"], name="b")
    assert a.oracle_cache_key.iloc[0] == b.oracle_cache_key.iloc[0]
    assert a.original_cache_key.iloc[0] == b.original_cache_key.iloc[0]
    assert metric(a, "test_acc", "original") == metric(b, "test_acc", "original")


def test_retrain_method_reproduces_the_oracle(run_pipeline):
    frame = run_pipeline(["method=retrain"])
    for m in ("forget_acc", "test_acc", "mia_loss_auc"):
        assert metric(frame, m) == metric(frame, m, "retrain")
    assert metric(frame, "speedup_vs_retrain") == pytest.approx(1.0)


def test_class_forgetting_oracle_has_zero_forget_accuracy(run_pipeline):
    frame = run_pipeline(["forget=class", "forget.classes=[3]", "method=retrain",
                          "train.max_batches=null", "train.epochs=8"])
    assert metric(frame, "forget_acc") == 0.0
    assert metric(frame, "forget_acc", "original") > 0.5


def test_mislabeled_forget_set_trains_original_on_flipped_labels(run_pipeline, tmp_path):
    frame = run_pipeline(["forget=mislabeled", "forget.fraction=0.2"])
    assert frame.forget.iloc[0] == "mislabeled(fraction=0.2)"
    assert frame.forget_size.iloc[0] == round(0.2 * 540)
