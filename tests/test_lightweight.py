"""lightweight (Chen et al., reconstructed): noise scale, stopping rule, cap, keys, stats."""

import copy

import pytest
import torch
from torch import nn

from conftest import metric
from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext, fit, predict
from unlearnbench.errors import ConfigError
from unlearnbench.methods import UnlearnData, build_method
from unlearnbench.methods.lightweight import threshold_mia_acc
from unlearnbench.models import build_model


def make_ctx(**recipe):
    return RunContext(device=torch.device("cpu"), seed=0, recipe=Recipe(**recipe),
                      show_progress=False)


def shifted_task(n_forget=100, n_retain=400, n_val=300, dim=16):
    """A learnable synthetic task (y = argmax Ax) whose forget set carries labels shifted by one."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(10, dim, generator=g)

    def split(n, shift):
        x = torch.randn(n, dim, generator=g)
        return Split(x, ((x @ a.T).argmax(1) + shift) % 10)

    return UnlearnData(forget=split(n_forget, 1), retain=split(n_retain, 0), val=split(n_val, 0),
                       forget_idx=torch.arange(n_forget), retain_idx=torch.arange(n_retain),
                       num_classes=10)


@pytest.fixture(scope="module")
def memorised():
    """A model fitted to the shifted forget set only: forget accuracy ~1, validation ~0, and
    training on D_r moves both, so the stopping rule fires after a few checks, well before a cap."""
    data = shifted_task()
    ctx = make_ctx(epochs=30, batch_size=50, lr=0.05)
    torch.manual_seed(0)
    model = build_model({"name": "mlp", "hidden": [64]}, (16,), 10)
    fit(model, data.forget, ctx.recipe, ctx, "original")
    return model, data


def accuracy(model, split, ctx):
    return float(predict(model, split.x, ctx).argmax(1).eq(split.y).float().mean())


def unlearn(memorised, **keys):
    model, data = memorised
    ctx = make_ctx(batch_size=50, lr=0.05)
    method = build_method({"name": "lightweight", "batch_size": 50, **keys})
    out = method.unlearn(copy.deepcopy(model), data, ctx)
    return out.model, data, out


def test_stops_when_forget_accuracy_reaches_validation_accuracy_plus_delta(memorised):
    model, data = memorised
    ctx0 = make_ctx()
    assert accuracy(model, data.forget, ctx0) > accuracy(model, data.val, ctx0) + 0.5  # memorised
    out, data, res = unlearn(memorised, check_every=2, delta=0.01, max_epochs=20)
    ctx = make_ctx()
    per_epoch = len(data.retain) // 50
    checks = res.details["checks"]
    assert res.stats["stopped_early"] and res.stats["steps"] < 20 * per_epoch
    assert res.stats["steps"] == checks[-1]["step"] == 2 * len(checks)
    assert len(checks) > 1  # not trivially satisfied at the first check
    assert all(c["forget_acc"] > c["val_acc"] + 0.01 and not c["stop"] for c in checks[:-1])
    last = checks[-1]
    assert last["stop"] and last["forget_acc"] <= last["val_acc"] + 0.01
    # the returned model is the one that passed the check
    assert accuracy(out, data.forget, ctx) == pytest.approx(last["forget_acc"])
    assert accuracy(out, data.val, ctx) == pytest.approx(last["val_acc"])
    assert res.stats["epochs"] == pytest.approx(res.stats["steps"] / per_epoch)


def test_mia_stop_requires_both_conditions(memorised):
    _, _, res = unlearn(memorised, check_every=2, delta=0.01, max_epochs=20, mia_stop=True)
    for c in res.details["checks"]:
        assert c["stop"] == (c["forget_acc"] <= c["val_acc"] + 0.01 and c["mia_acc"] <= 0.51)
    assert res.details["checks"][-1]["stop"]


def test_cap_on_epochs_is_honoured(memorised):
    out, data, res = unlearn(memorised, check_every=10**6, max_epochs=2)
    per_epoch = len(data.retain) // 50
    assert res.stats["steps"] == 2 * per_epoch
    assert res.stats["epochs"] == 2.0
    assert not res.stats["stopped_early"] and res.details["checks"] == []


def test_noise_std_is_sigma_times_each_tensors_std():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(200, 200), nn.Linear(200, 200))
    with torch.no_grad():
        model[1].weight.mul_(50.0)
    before = copy.deepcopy(model)
    build_method({"name": "lightweight", "sigma": 0.1}).perturb(model, torch.Generator().manual_seed(0))
    for (name, p), q in zip(model.named_parameters(), before.parameters()):
        ratio = float(((p - q).std() / q.std()).detach())
        assert ratio == pytest.approx(0.1, rel=0.1 if p.numel() > 1000 else 0.35), name


def test_threshold_mia_accuracy_hand_computed():
    t = torch.tensor
    assert float(threshold_mia_acc(t([0.1, 0.2]), t([0.3, 0.4]))) == 1.0  # perfectly separable
    assert float(threshold_mia_acc(t([0.1, 0.5]), t([0.3, 0.7]))) == 0.75  # best cut: ≤0.1 or ≤0.5
    assert float(threshold_mia_acc(t([1.0, 2.0]), t([1.0, 2.0]))) == 0.5  # ties are never split
    assert float(threshold_mia_acc(t([0.9, 0.8]), t([0.1, 0.2]))) == 0.5  # inverted: chance floor
    # unbalanced groups: 1 member at 0.1, 3 non-members above -> TPR 1, TNR 1
    assert float(threshold_mia_acc(t([0.1]), t([0.3, 0.4, 0.5]))) == 1.0


@pytest.mark.parametrize("key,value", [
    ("sigma", -0.1), ("lr_scale", 0.0), ("check_every", 0), ("delta", 1.0), ("delta", -0.01),
    ("max_epochs", 0), ("batch_size", 0),
])
def test_bad_keys_raise_config_error_naming_the_key(key, value):
    with pytest.raises(ConfigError) as err:
        build_method({"name": "lightweight", key: value})
    assert err.value.key == f"method.{key}"


def test_smoke_run_reports_its_epochs_as_method_stats(run_pipeline, tmp_path):
    # smoke: 486 retain examples, default batch 256 -> 2 steps per epoch; no check fires
    frame = run_pipeline(["method=lightweight", "method.max_epochs=2", "eval.evaluators=[accuracy]"])
    assert "reconstructed" in frame.method_version.iloc[0]
    assert metric(frame, "method.steps") == 4.0
    assert metric(frame, "method.epochs") == 2.0
    assert metric(frame, "method.stopped_early") == 0.0
    assert frame[(frame.metric == "method.epochs") & (frame.role != "unlearned")].empty
    import json

    assert json.loads((tmp_path / "run" / "method_details.json").read_text()) == {"checks": []}
