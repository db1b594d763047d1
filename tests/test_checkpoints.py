"""Checkpoints in and out: save_models, original_path / oracle_path, method=checkpoint."""

import pandas as pd
import pytest
import torch

from conftest import metric
from unlearnbench.errors import ConfigError
from unlearnbench.pipeline import run

ACCURACIES = ("forget_acc", "retain_acc", "test_acc")


def test_saved_models_load_with_weights_only_and_match_the_run(run_cfg, tmp_path):
    result = run(run_cfg(["save_models=true"]))
    for role, model in result.models.items():
        state = torch.load(tmp_path / "run" / "models" / f"{role}.pt", weights_only=True)
        assert all(torch.equal(state[k], v.cpu()) for k, v in model.state_dict().items()), role


def test_original_path_starts_from_the_users_model(run_cfg, tmp_path):
    first = run(run_cfg(["save_models=true"], name="first"))
    path = tmp_path / "first" / "models" / "original.pt"
    again = run(run_cfg([f"original_path={path}", f"cache_dir={tmp_path / 'fresh_cache'}"], name="again"))
    a, b = first.metrics, again.metrics
    for m in ACCURACIES:  # the same original, so the same original and finetuned numbers
        assert metric(b, m, "original") == metric(a, m, "original")
        assert metric(b, m) == metric(a, m)
    key = b.original_cache_key.iloc[0]
    assert key.startswith("file:") and not b.original_cache_hit.iloc[0]
    assert b.original_train_s.isna().all()


def test_oracle_path_replaces_the_oracle_and_drops_the_speedup(run_cfg, tmp_path):
    first = run(run_cfg(["save_models=true", "method=retrain"], name="first"))
    path = tmp_path / "first" / "models" / "retrain.pt"
    again = run(run_cfg([f"oracle_path={path}", "method=finetune",
                         "eval.evaluators=[accuracy,efficiency]"], name="again")).metrics
    assert metric(again, "forget_acc", "retrain") == metric(first.metrics, "forget_acc", "retrain")
    assert (again.metric == "speedup_vs_retrain").sum() == 0 and metric(again, "rte_s") > 0


def test_wrong_architecture_is_a_config_error_naming_the_key(run_cfg, tmp_path):
    path = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(ConfigError, match="`original_path`.*does not fit"):
        run(run_cfg([f"original_path={path}"]))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="`oracle_path`.*not a readable"):
        run(run_cfg([f"oracle_path={tmp_path / 'junk.pt'}"]))


def test_checkpoint_method_reproduces_the_method_that_made_the_model(run_cfg, tmp_path):
    made = run(run_cfg(["save_models=true", "method=gradient_ascent"], name="made"))
    path = tmp_path / "made" / "models" / "unlearned.pt"
    loaded = run(run_cfg(["method=checkpoint", f"method.path={path}"], name="loaded")).metrics
    for m in ACCURACIES + ("mia_loss_auc",):
        assert metric(loaded, m) == metric(made.metrics, m)
    assert set(loaded.method) == {"checkpoint"}


def test_checkpoint_method_needs_a_path(run_cfg):
    with pytest.raises(ConfigError, match="`method.path`"):
        run(run_cfg(["method=checkpoint"]))
