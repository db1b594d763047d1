"""topk / randomk (Zuo et al., reconstructed): selection, perturbation, repair, keys."""

import copy
import math

import pytest
import torch
from torch import nn

from conftest import metric
from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext
from unlearnbench.errors import ConfigError
from unlearnbench.methods import UnlearnData, build_method
from unlearnbench.methods.perturb import candidates, importance, mask_count
from unlearnbench.models import build_model


def make_ctx(seed=0, **recipe):
    return RunContext(device=torch.device("cpu"), seed=seed, recipe=Recipe(**recipe),
                      show_progress=False)


def make_data(shape=(1, 8, 8), n_forget=20, n_retain=60, seed=0):
    g = torch.Generator().manual_seed(seed)

    def split(n):
        return Split(torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g))

    return UnlearnData(forget=split(n_forget), retain=split(n_retain), val=split(30),
                       forget_idx=torch.arange(n_forget), retain_idx=torch.arange(n_retain),
                       num_classes=10)


def make_model(name="mlp", shape=(1, 8, 8), **kw):
    torch.manual_seed(0)
    return build_model({"name": name, **kw}, shape, 10)


def method(name, **keys):
    return build_method({"name": name, **keys})


def changed(before: nn.Module, after: nn.Module):
    """name -> bool tensor of entries that differ."""
    b = dict(before.named_parameters())
    return {n: p.detach() != b[n].detach() for n, p in after.named_parameters()}


@pytest.mark.parametrize("name", ["topk", "randomk"])
def test_only_selected_entries_change_and_unselected_are_bit_identical(name):
    model, data, ctx = make_model(hidden=[32]), make_data(), make_ctx()
    before = copy.deepcopy(model)
    masks = method(name, fraction=0.05).perturb(model, data, ctx)
    b = dict(before.named_parameters())
    for n, p in model.named_parameters():
        assert torch.equal(p[~masks[n]], b[n][~masks[n]]), n  # bit-identical, not merely close
        assert (p[masks[n]] != b[n][masks[n]]).all(), n


@pytest.mark.parametrize("name", ["topk", "randomk"])
def test_global_scope_selects_exactly_ceil_fraction_of_all_parameters(name):
    model, data, ctx = make_model(hidden=[32]), make_data(), make_ctx()
    n = sum(p.numel() for p in model.parameters())  # 64*32+32 + 32*10+10 = 2410
    assert n == 2410
    before = copy.deepcopy(model)
    masks = method(name, fraction=0.013).perturb(model, data, ctx)
    assert mask_count(masks) == math.ceil(0.013 * 2410) == 32
    assert sum(int(c.sum()) for c in changed(before, model).values()) == 32


def test_selection_size_has_no_float_round_up():
    from unlearnbench.methods.perturb import selection_size

    assert selection_size(300, 0.01) == 3  # 0.01 * 300 = 3.0000000000000004 in floats
    assert selection_size(301, 0.01) == 4
    assert selection_size(10, 0.001) == 1


@pytest.mark.parametrize("name", ["topk", "randomk"])
def test_per_layer_scope_selects_the_fraction_within_each_tensor(name):
    model, data, ctx = make_model(hidden=[32]), make_data(), make_ctx()
    masks = method(name, fraction=0.1, scope="per_layer").perturb(model, data, ctx)
    for n, p in model.named_parameters():
        assert int(masks[n].sum()) == math.ceil(0.1 * p.numel()), n


def test_topk_selects_the_largest_importance_entries():
    model, data, ctx = make_model(hidden=[16]), make_data(), make_ctx()
    params = candidates(model, include_norm=False)
    scores = importance(model, params, data.forget, ctx, "logit_norm", 128)
    masks = method("topk", fraction=0.02, sigma=0.0).perturb(model, data, ctx)
    flat_scores = torch.cat([scores[n].reshape(-1) for n in params])
    flat_masks = torch.cat([masks[n].reshape(-1) for n in params])
    assert flat_scores[flat_masks].min() >= flat_scores[~flat_masks].max()


def test_relative_noise_scales_with_weight_magnitude_absolute_does_not():
    data, ctx = make_data(), make_ctx()
    deltas = {}
    for relative in (False, True):
        for scale in (1.0, 10.0):
            model = make_model(hidden=[32])
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(scale)
            before = copy.deepcopy(model)
            # randomk with the same seed selects and draws the same entries for both scales
            method("randomk", fraction=0.2, sigma=0.1, relative=relative).perturb(model, data, ctx)
            deltas[relative, scale] = torch.cat([(p - q).reshape(-1) for p, q in
                                                 zip(model.parameters(), before.parameters())])
    assert torch.allclose(deltas[False, 10.0], deltas[False, 1.0], atol=1e-5)
    assert torch.allclose(deltas[True, 10.0], 10 * deltas[True, 1.0], rtol=1e-4, atol=1e-6)
    assert not torch.allclose(deltas[True, 1.0], deltas[False, 1.0])


def test_relative_noise_leaves_zero_weights_at_zero():
    model, data, ctx = make_model(hidden=[32]), make_data(), make_ctx()
    with torch.no_grad():
        model.fc.weight.zero_()
    masks = method("randomk", fraction=0.5, relative=True).perturb(model, data, ctx)
    assert masks["fc.weight"].any()
    assert torch.equal(model.fc.weight, torch.zeros_like(model.fc.weight))


@pytest.mark.parametrize("name", ["topk", "randomk"])
def test_norm_layers_untouched_unless_included(name):
    data = make_data()
    norm_names = [f"{m}.{p}" for m, mod in make_model("cnn", width=4).named_modules()
                  if isinstance(mod, nn.BatchNorm2d) for p in ("weight", "bias")]
    assert len(norm_names) == 8  # four BatchNorm layers in the small CNN
    for include_norm in (False, True):
        model, ctx = make_model("cnn", width=4), make_ctx()
        before = copy.deepcopy(model)
        masks = method(name, fraction=0.5, include_norm=include_norm).perturb(model, data, ctx)
        diff = changed(before, model)
        if include_norm:
            assert any(diff[n].any() for n in norm_names)
        else:
            assert not any(n in masks for n in norm_names)
            assert not any(diff[n].any() for n in norm_names)


def test_importance_matches_hand_computed_mas_on_a_linear_model():
    # F = ½‖Wx‖² ⇒ ∂F/∂W = (Wx)xᵀ. Per-example (batch 1): Ω = mean_k |W x_k x_kᵀ|;
    # batch-level (one batch of 2): Ω = |W · mean_k x_k x_kᵀ|.
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0]]))
    x = torch.tensor([[1.0, 0.0], [1.0, -1.0]])
    forget, ctx = Split(x, torch.tensor([0, 1])), make_ctx()
    params = {"weight": model.weight}
    # x1: Wx=(1,0), outer=[[1,0],[0,0]]; x2: Wx=(-1,1), outer=[[-1,1],[1,-1]]
    per_example = importance(model, params, forget, ctx, "logit_norm", 1)["weight"]
    assert torch.allclose(per_example, torch.tensor([[1.0, 0.5], [0.5, 0.5]]))
    batch = importance(model, params, forget, ctx, "logit_norm", 2)["weight"]
    assert torch.allclose(batch, torch.tensor([[0.0, 0.5], [0.5, 0.5]]))
    # loss: ∂CE/∂W = (softmax(Wx) − onehot(y)) xᵀ
    p1 = torch.softmax(torch.tensor([1.0, 0.0]), 0) - torch.tensor([1.0, 0.0])
    p2 = torch.softmax(torch.tensor([-1.0, 1.0]), 0) - torch.tensor([0.0, 1.0])
    want = (torch.outer(p1, x[0]).abs() + torch.outer(p2, x[1]).abs()) / 2
    assert torch.allclose(importance(model, params, forget, ctx, "loss", 1)["weight"], want)


def test_repair_only_selected_keeps_others_bit_identical_through_momentum_and_decay():
    data = make_data()
    keys = dict(fraction=0.05, repair_epochs=2, repair_lr=0.1)
    perturbed, ctx = make_model(hidden=[32]), make_ctx(weight_decay=0.01, momentum=0.9)
    masks = method("randomk", **keys, repair_only_selected=True).perturb(perturbed, data, ctx)
    repaired = method("randomk", **keys, repair_only_selected=True).unlearn(
        make_model(hidden=[32]), data, make_ctx(weight_decay=0.01, momentum=0.9)).model
    free = method("randomk", **keys).unlearn(make_model(hidden=[32]), data, make_ctx()).model
    pp, fp = dict(perturbed.named_parameters()), dict(free.named_parameters())
    for n, p in repaired.named_parameters():
        assert torch.equal(p[~masks[n]], pp[n][~masks[n]]), n
        assert not torch.equal(fp[n][~masks[n]], pp[n][~masks[n]]), n  # plain repair moves them
    assert any(not torch.equal(p[masks[n]], pp[n][masks[n]]) for n, p in repaired.named_parameters())
    assert all(p._backward_hooks is None or not p._backward_hooks for p in repaired.parameters())


def test_same_seed_same_result_other_seed_differs():
    data = make_data()
    runs = [method("randomk", repair_epochs=0).unlearn(make_model(hidden=[16]), data, make_ctx(seed=s)).model
            for s in (0, 0, 1)]
    w = [m.fc.weight for m in runs]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])


@pytest.mark.parametrize("name,key,value", [
    ("topk", "fraction", 0.0), ("topk", "fraction", 1.0), ("randomk", "fraction", -0.1),
    ("randomk", "fraction", 1.5), ("topk", "importance", "fisher"), ("topk", "scope", "layer"),
    ("randomk", "scope", "local"), ("randomk", "sigma", -1.0), ("topk", "repair_epochs", -1),
    ("topk", "repair_lr", 0.0), ("topk", "importance_batch_size", 0),
])
def test_bad_keys_raise_config_error_naming_the_key(name, key, value):
    with pytest.raises(ConfigError) as err:
        method(name, **{key: value})
    assert err.value.key == f"method.{key}"


def test_randomk_has_no_importance_key():
    with pytest.raises(ConfigError) as err:
        method("randomk", importance="loss")
    assert err.value.key == "method.importance"


@pytest.mark.parametrize("name", ["topk", "randomk"])
def test_smoke_run_through_pipeline(run_pipeline, name):
    frame = run_pipeline([f"method={name}",
                          "eval.evaluators=[accuracy,efficiency]"])
    assert "reconstructed" in frame.method_version.iloc[0]
    assert 0.0 <= metric(frame, "forget_acc") <= 1.0
    assert metric(frame, "precompute_s") > 0.0
    assert metric(frame, "precompute_s") < metric(frame, "rte_s")
    assert metric(frame, "method.selected") > 0
