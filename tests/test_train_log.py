"""train_log.csv: per-epoch curves of the original, the oracle and a gradient method, cached
with the models, recorded without changing the training."""

import pandas as pd
import torch
from torch import nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext, fit
from unlearnbench.engine.train_log import COLUMNS, TrainLog

CPU = torch.device("cpu")


def _bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))


def _split(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g))


def test_logging_changes_no_weight_no_bn_statistic_and_no_random_stream():
    recipe = Recipe(epochs=3, batch_size=16, augment="flip")
    train, val = _split(64, 0), _split(40, 1)
    states, draws = [], []
    for log in (None, TrainLog(val, RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False))):
        ctx = RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False)
        model = _bn_model()
        fit(model, train, recipe, ctx, "t", curve=log)
        states.append(model.state_dict())
        draws.append(torch.rand(3))  # named streams are fresh generators; dropout draws from the global one
    torch.testing.assert_close(states[0], states[1], rtol=0, atol=0)  # BN running stats included
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)
    assert [r["epoch"] for r in log.rows] == [1, 2, 3] and [r["step"] for r in log.rows] == [4, 8, 12]
    assert all(0 <= r["val_acc"] <= 1 and r["loss"] > 0 for r in log.rows)
    expected = (predict_labels(model, val) == val.y).float().mean().item()
    assert abs(log.rows[-1]["val_acc"] - expected) < 1e-6


def predict_labels(model, split):
    with torch.no_grad():
        return model.eval()(split.x).argmax(1)


def test_no_validation_split_leaves_val_acc_empty():
    log = TrainLog(_split(0, 0), RunContext(device=CPU, seed=0, recipe=Recipe(), show_progress=False))
    log.record(_bn_model(), 0, 2, torch.tensor(3.0))
    assert log.rows[0]["val_acc"] is None and log.rows[0]["loss"] == 1.5


def test_run_writes_train_log_and_a_cache_hit_keeps_the_references_rows(run_pipeline, tmp_path):
    first = run_pipeline(["method=finetune", "train.epochs=3", "method.epochs=2"], name="a")
    second = run_pipeline(["method=gradient_ascent", "train.epochs=3", "method.epochs=2"], name="b")
    assert not first.original_cache_hit.iloc[0] and second.original_cache_hit.iloc[0]
    a, b = pd.read_csv(tmp_path / "a" / "train_log.csv"), pd.read_csv(tmp_path / "b" / "train_log.csv")
    assert list(a.columns) == COLUMNS
    for role, epochs in (("original", 3), ("retrain", 3), ("unlearned", 2)):
        rows = a[a.role == role]
        assert rows.epoch.tolist() == list(range(1, epochs + 1)), role
        assert rows.step.is_monotonic_increasing and rows.seconds.is_monotonic_increasing
        assert rows.val_acc.between(0, 1).all() and (rows.loss > 0).all()
    refs = a.role.isin(["original", "retrain"])
    pd.testing.assert_frame_equal(a[refs].reset_index(drop=True),
                                  b[b.role.isin(["original", "retrain"])].reset_index(drop=True))
    assert a[a.role == "unlearned"].loss.tolist() != b[b.role == "unlearned"].loss.tolist()
