"""salun (saliency-masked random labels) and l1_sparse (finetune + decaying ℓ1)."""

import copy

import pytest
import torch

from test_localize_del import make_ctx, make_data, make_model, n_params
from unlearnbench.methods import build_method
from unlearnbench.methods.l1_sparse import l1_weight
from unlearnbench.methods.localize import saliency_mask


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_salun_with_full_mask_is_random_label_exactly():
    data = make_data()
    a = build_method({"name": "salun", "mask_fraction": 1.0, "epochs": 1}).unlearn(
        make_model(), data, make_ctx(batch_size=32)).model
    b = build_method({"name": "random_label", "epochs": 1}).unlearn(make_model(), data, make_ctx(batch_size=32)).model
    assert same(a, b)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_salun_moves_only_salient_weights(optimizer):
    ctx = make_ctx(optimizer=optimizer, weight_decay=5e-4, batch_size=32)
    data, model = make_data(), make_model()
    before = copy.deepcopy(model)
    mask = saliency_mask(before, data.forget, ctx, 0.5)
    result = build_method({"name": "salun", "epochs": 2, "lr": 0.1}).unlearn(model, data, ctx)
    out = result.model
    changed = 0
    for (name, p), p0 in zip(out.named_parameters(), before.parameters()):
        m = mask.allowed[name]
        assert torch.equal(p[~m], p0[~m]), name  # classifier included: SalUn masks it too
        changed += int((p != p0).sum())
    assert 0 < changed <= round(0.5 * n_params(before))
    assert result.stats["mask_fraction"] == pytest.approx(round(0.5 * n_params(before)) / n_params(before))


def test_salun_mask_is_the_top_half_of_the_forget_gradient():
    """Every selected element's |G| is at least every unselected one's."""
    data, model, ctx = make_data(), make_model(), make_ctx()
    model.zero_grad()
    loss_sum = 0
    for start in range(0, len(data.forget), 128):
        x, y = data.forget.x[start:start + 128], data.forget.y[start:start + 128]
        loss_sum = loss_sum + torch.nn.functional.cross_entropy(model(x), y)
    loss_sum.backward()
    mask = saliency_mask(model, data.forget, ctx, 0.5)
    g = torch.cat([p.grad.abs().reshape(-1) for p in model.parameters()])
    m = torch.cat([mask.allowed[n].reshape(-1) for n, _ in model.named_parameters()])
    assert g[m].min() >= g[~m].max()


def test_l1_weight_decays_linearly_to_zero():
    assert l1_weight(7e-5, 0, 10) == 7e-5
    assert l1_weight(7e-5, 5, 10) == pytest.approx(3.5e-5)
    assert l1_weight(1.0, 9, 10) == pytest.approx(0.1)


def test_l1_sparse_with_zero_alpha_is_finetune_exactly():
    data = make_data()
    a = build_method({"name": "l1_sparse", "alpha": 0.0, "epochs": 1}).unlearn(make_model(), data, make_ctx(batch_size=32)).model
    b = build_method({"name": "finetune", "epochs": 1}).unlearn(make_model(), data, make_ctx(batch_size=32)).model
    assert same(a, b)


def test_l1_sparse_shrinks_the_l1_norm_compared_with_finetune():
    data = make_data()
    l1 = build_method({"name": "l1_sparse", "alpha": 0.5, "epochs": 2, "lr": 0.05}).unlearn(
        make_model(), data, make_ctx(batch_size=32, weight_decay=0.0)).model
    ft = build_method({"name": "finetune", "epochs": 2, "lr": 0.05}).unlearn(make_model(), data,
                                                                 make_ctx(batch_size=32, weight_decay=0.0)).model
    norm = lambda m: sum(float(p.detach().abs().sum()) for p in m.parameters())  # noqa: E731
    assert norm(l1) < 0.95 * norm(ft)


@pytest.mark.parametrize("method", ["salun", "l1_sparse"])
def test_runs_in_the_pipeline(run_pipeline, method):
    from conftest import metric

    frame = run_pipeline([f"method={method}", "method.epochs=1"])
    assert 0.0 <= metric(frame, "forget_acc") <= 1.0
    assert (frame.precompute_s.iloc[0] > 0) == (method == "salun")
