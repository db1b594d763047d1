"""DEL and the shared localization mechanism: channel rule, exact budget, seeded reset,
bit-identical masked-out parameters through momentum / weight decay, config errors."""

import copy

import pytest
import torch

from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext
from unlearnbench.errors import ConfigError
from unlearnbench.methods import UnlearnData, build_method
from unlearnbench.methods.localize import (Localization, budget_count, channel_scores, del_mask,
                                           fresh_init, random_mask, saliency_mask, top_fraction)
from unlearnbench.models import build_model, classifier_of

CPU = torch.device("cpu")


def make_ctx(seed=0, **recipe):
    return RunContext(device=CPU, seed=seed, recipe=Recipe(**recipe), show_progress=False)


def make_data(n=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 1, 4, 4, generator=g) + y.view(-1, 1, 1, 1).float()
    split = Split(x, y)
    f_idx, r_idx = torch.arange(0, 30), torch.arange(30, n)
    return UnlearnData(forget=split.subset(f_idx), retain=split.subset(r_idx), val=split.subset(r_idx[:20]),
                       forget_idx=f_idx, retain_idx=r_idx, num_classes=3,
                       new_model=lambda: build_model({"name": "mlp", "hidden": [16]}, (1, 4, 4), 3))


def make_model(seed=0):
    torch.manual_seed(seed)
    return build_model({"name": "mlp", "hidden": [16]}, (1, 4, 4), 3)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------- channel rule, budget

def test_channel_rule_out_fraction_on_hand_built_tensor():
    t = torch.arange(100.0).view(20, 5)  # out = 20 -> h = int(0.1*20) = 2
    s = channel_scores(t, "out_fraction")
    expected = torch.arange(20.0) * 5 + 3.5  # mean of the row's top-2: 5i+4, 5i+3
    assert torch.equal(s, expected.view(20, 1).expand(20, 5))
    # row_fraction: h = max(1, int(0.1*5)) = 1 -> row max; mean: row mean
    assert torch.equal(channel_scores(t, "row_fraction")[:, 0], torch.arange(20.0) * 5 + 4)
    assert torch.equal(channel_scores(t, "mean")[:, 3], torch.arange(20.0) * 5 + 2)


def test_channel_rule_on_conv_shaped_and_1d_tensors():
    conv = torch.zeros(10, 2, 2, 2)  # out = 10 -> h = 1: each channel gets its max
    conv[3, 1, 0, 1] = 7.0
    conv[3, 0, 0, 0] = 2.0
    s = channel_scores(conv, "out_fraction")
    assert s.shape == conv.shape and bool((s[3] == 7.0).all()) and bool((s[4] == 0).all())
    bias = torch.tensor([3.0, 1.0, 2.0])
    assert torch.equal(channel_scores(bias, "out_fraction"), bias)
    # h = int(0.1*30) = 3 exceeds the row length 2: capped, i.e. the row mean
    wide = torch.arange(60.0).view(30, 2)
    assert torch.equal(channel_scores(wide)[:, 0], torch.arange(30.0) * 2 + 0.5)


def test_budget_is_exact_with_ties_and_rounds():
    assert budget_count(0.3, 10) == 3 and budget_count(0.25, 10) == 2 and budget_count(0.35, 10) == 4
    scores = {"a": torch.ones(4, 3), "b": torch.tensor([1.0, 5.0, 1.0])}  # many ties
    mask = top_fraction(scores, 0.4)
    assert sum(int(m.sum()) for m in mask.allowed.values()) == round(0.4 * 15)
    assert bool(mask.allowed["b"][1])  # the one large score is always in


@pytest.mark.parametrize("criterion", ["weighted_grad", "grad", "weight", "weighted_grad_all"])
@pytest.mark.parametrize("budget", [0.3, 0.05])
def test_del_mask_is_exactly_the_budget_fraction(criterion, budget):
    model, data, ctx = make_model(), make_data(), make_ctx()
    mask = del_mask(model, data.forget, data.retain, ctx, budget, criterion)
    on = sum(int(m.sum()) for m in mask.allowed.values())
    assert on == round(budget * n_params(model))


def test_del_mask_follows_the_channel_score():
    """Whole rows enter the mask together: within a 2-D tensor a row is all-in or all-out,
    except at most one row at the global threshold."""
    model, data, ctx = make_model(), make_data(), make_ctx()
    mask = del_mask(model, data.forget, data.retain, ctx, 0.3)
    for name, m in mask.allowed.items():
        if m.ndim == 2:
            partial = ((m.sum(1) > 0) & (m.sum(1) < m.shape[1])).sum()
            assert int(partial) <= 1, name


def test_random_and_saliency_masks_exact_and_seeded():
    model, data = make_model(), make_data()
    a, b = random_mask(model, make_ctx(0), 0.3), random_mask(model, make_ctx(0), 0.3)
    c = random_mask(model, make_ctx(1), 0.3)
    assert all(torch.equal(a.allowed[n], b.allowed[n]) for n in a.allowed)
    assert not all(torch.equal(a.allowed[n], c.allowed[n]) for n in a.allowed)
    assert sum(int(m.sum()) for m in a.allowed.values()) == round(0.3 * n_params(model))
    s = saliency_mask(model, data.forget, make_ctx(), 0.5)
    assert sum(int(m.sum()) for m in s.allowed.values()) == round(0.5 * n_params(model))


# ---------------------------------------------------------------------- bit-identical freezing

@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("localize", ["del", "salun", "random"])
def test_masked_out_params_stay_bit_identical_through_momentum_and_decay(optimizer, localize):
    ctx = make_ctx(optimizer=optimizer, momentum=0.9, weight_decay=5e-4, batch_size=32)
    model, data = make_model(), make_data()
    before = copy.deepcopy(model)
    loc = Localization(localize, 0.2)
    mask = loc.mask(before, data, ctx)
    out = build_method({"name": "finetune", "epochs": 2, "lr": 0.1, "localize": localize,
                        "localize_budget": 0.2}).unlearn(model, data, ctx).model
    fc = {id(p) for p in classifier_of(out).parameters()}
    moved = 0
    for (name, p), p0 in zip(out.named_parameters(), before.parameters()):
        m = mask.allowed[name]
        assert torch.equal(p[~m], p0[~m]), name  # bit-identical, weight decay included
        moved += int((p[m] != p0[m]).sum())
        if id(p) in fc:
            assert bool(m.all()) and bool((p != p0).all())  # classifier fully trainable
    assert moved > 0
    assert ctx.timings["precompute_s"] > 0


def test_without_localization_weight_decay_moves_everything():
    """The control: the same finetune without a mask changes (almost) every element."""
    ctx = make_ctx(momentum=0.9, weight_decay=5e-4, batch_size=32)
    model, data = make_model(), make_data()
    before = copy.deepcopy(model)
    out = build_method({"name": "finetune", "epochs": 1, "lr": 0.1}).unlearn(model, data, ctx).model
    changed = sum(int((p != p0).sum()) for p, p0 in zip(out.parameters(), before.parameters()))
    assert changed > 0.9 * n_params(before)


@pytest.mark.parametrize("method", ["gradient_ascent", "negrad_plus", "random_label", "l1_sparse", "salun"])
def test_every_retrofitted_method_honours_the_mask(method):
    ctx = make_ctx(optimizer="adamw", weight_decay=0.01, batch_size=32)
    model, data = make_model(), make_data()
    before = copy.deepcopy(model)
    mask = Localization("random", 0.1).mask(before, data, ctx)
    out = build_method({"name": method, "epochs": 1, "lr": 0.05, "localize": "random",
                        "localize_budget": 0.1}).unlearn(model, data, ctx).model
    for (name, p), p0 in zip(out.named_parameters(), before.parameters()):
        assert torch.equal(p[~mask.allowed[name]], p0[~mask.allowed[name]]), name


def test_localize_none_is_the_unrestricted_method():
    ctx, data = make_ctx(batch_size=32), make_data()
    a = build_method({"name": "finetune", "epochs": 1}).unlearn(make_model(), data, ctx).model
    b = build_method({"name": "finetune", "epochs": 1, "localize": "none"}).unlearn(make_model(), data, ctx).model
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert "precompute_s" not in ctx.timings


# ---------------------------------------------------------------------- DEL reset and finetune

def test_fresh_init_is_seeded_and_not_the_originals_init():
    ctx, model = make_ctx(seed=3), make_model()
    state = torch.get_rng_state()
    a, b = fresh_init(model, ctx, "fresh_init"), fresh_init(model, ctx, "fresh_init")
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone
    c = fresh_init(model, make_ctx(seed=4), "fresh_init")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.fc.weight, c.fc.weight)
    assert not torch.equal(a.fc.weight, make_model(seed=3).fc.weight)


def test_del_resets_masked_elements_to_the_seeded_init_and_keeps_the_rest():
    """With a vanishing lr the finetune cannot move anything measurable, so the result is
    exactly step 4: masked elements = θ_init, others = θ_o."""
    ctx, data = make_ctx(seed=5), make_data()
    model = make_model()
    before = copy.deepcopy(model)
    mask = del_mask(before, data.forget, data.retain, ctx, 0.3)
    init = fresh_init(before, ctx, "fresh_init", data.new_model)
    result = build_method({"name": "del", "lr": 1e-30, "epochs": 1, "batch_size": 32}).unlearn(model, data, ctx)
    out = result.model
    for (name, p), p0, pi in zip(out.named_parameters(), before.parameters(), init.parameters()):
        m = mask.allowed[name]
        assert torch.equal(p[~m], p0[~m]) or name.startswith("fc"), name
        assert torch.allclose(p[m], pi[m], atol=1e-20, rtol=0), name
    assert result.stats["mask_fraction"] == pytest.approx(round(0.3 * n_params(before)) / n_params(before))


def test_del_two_runs_same_seed_identical_and_unmasked_frozen():
    data = make_data()
    cfg = {"name": "del", "lr": 0.05, "epochs": 2, "batch_size": 32}
    a = build_method(cfg).unlearn(make_model(), data, make_ctx(seed=7)).model
    b = build_method(cfg).unlearn(make_model(), data, make_ctx(seed=7)).model
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    ctx = make_ctx(seed=7)
    before = make_model()
    mask = del_mask(before, data.forget, data.retain, ctx, 0.3)
    for (name, p), p0 in zip(a.named_parameters(), before.parameters()):
        if not name.startswith("fc"):
            assert torch.equal(p[~mask.allowed[name]], p0[~mask.allowed[name]]), name
    assert not torch.equal(a.fc.weight, before.fc.weight)


def test_del_classifier_masked_when_not_trainable():
    data, ctx = make_data(), make_ctx()
    before = make_model()
    mask = del_mask(before, data.forget, data.retain, ctx, 0.05)
    out = build_method({"name": "del", "budget": 0.05, "lr": 0.05, "epochs": 1, "batch_size": 32,
                        "classifier_trainable": False}).unlearn(make_model(), data, ctx).model
    m = mask.allowed["fc.weight"]
    assert bool((~m).any()) and torch.equal(out.fc.weight[~m], before.fc.weight[~m])
    trainable = build_method({"name": "del", "budget": 0.05, "lr": 0.05, "epochs": 1,
                              "batch_size": 32}).unlearn(make_model(), data, make_ctx()).model
    assert bool((trainable.fc.weight != before.fc.weight).all())


# ---------------------------------------------------------------------- config

@pytest.mark.parametrize("cfg,key", [
    ({"name": "del", "criterion": "fisher"}, "method.criterion"),
    ({"name": "del", "channel_topk": "median"}, "method.channel_topk"),
    ({"name": "del", "budget": 0.0}, "method.budget"),
    ({"name": "del", "budget": 1.5}, "method.budget"),
    ({"name": "del", "lr": -1}, "method.lr"),
    ({"name": "del", "epochs": 0}, "method.epochs"),
    ({"name": "del", "budgett": 0.3}, "method.budgett"),
    ({"name": "finetune", "localize": "fisher"}, "method.localize"),
    ({"name": "negrad_plus", "localize": "del", "localize_budget": 0}, "method.localize_budget"),
    ({"name": "salun", "mask_fraction": 2}, "method.mask_fraction"),
    ({"name": "l1_sparse", "alpha": -1e-4}, "method.alpha"),
])
def test_bad_keys_raise_config_error_naming_the_key(cfg, key):
    with pytest.raises(ConfigError) as err:
        build_method(cfg)
    assert err.value.key == key


def test_del_runs_in_the_pipeline_and_records_precompute(run_pipeline):
    from conftest import metric

    frame = run_pipeline(["method=del", "method.epochs=1"])
    assert frame.precompute_s.iloc[0] > 0
    assert frame.precompute_s.iloc[0] <= frame.unlearn_s.iloc[0]
    assert 0.0 <= metric(frame, "forget_acc") <= 1.0


@pytest.mark.parametrize("method,kwargs", [
    ("nabla_tau", {"batch_size": 32}),
    ("scrub", {"max_steps": 1, "min_steps": 1}),
    ("topk", {"sigma": 0.0, "repair_lr": 0.05}),   # sigma 0: only the repair moves weights
    ("randomk", {"sigma": 0.0, "repair_lr": 0.05}),
    ("lightweight", {"sigma": 0.0, "max_epochs": 1}),
])
def test_seed_methods_honour_the_mask(method, kwargs):
    ctx = make_ctx(optimizer="adamw", weight_decay=0.01, batch_size=32)
    model, data = make_model(), make_data()
    before = copy.deepcopy(model)
    mask = Localization("random", 0.1).mask(before, data, ctx)
    out = build_method({"name": method, "localize": "random", "localize_budget": 0.1,
                        **kwargs}).unlearn(model, data, ctx).model
    moved = 0
    for (name, p), p0 in zip(out.named_parameters(), before.parameters()):
        assert torch.equal(p[~mask.allowed[name]], p0[~mask.allowed[name]]), name
        moved += int((p != p0).sum())
    assert moved > 0
