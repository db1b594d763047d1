"""Options that let a paper's recipe run each baseline as that paper did (issue: paper tables).

Each option's default keeps today's behaviour; each is checked here on tiny data.
"""

import copy

import numpy as np
import pytest
import torch

from test_localize_del import make_ctx, make_data, make_model
from unlearnbench.data.bundle import RawData, build_bundle
from unlearnbench.errors import ConfigError
from unlearnbench.methods import build_method, common
from unlearnbench.methods.common import random_any_labels, random_wrong_labels
from unlearnbench.methods.scrub import Scrub
from unlearnbench.models import build_model


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.fixture
def spy_loop(monkeypatch):
    """Records what run_epochs hands the engine's train_loop, then runs it."""
    seen = {}
    real = common.train_loop

    def spy(model, make_batches, loss_fn, opt, epochs, ctx, desc, sched=None, **kw):
        seen.update(opt=opt, sched=sched, recipe=ctx.recipe, batches=make_batches, **kw)
        return real(model, make_batches, loss_fn, opt, epochs, ctx, desc, sched, **kw)

    monkeypatch.setattr(common, "train_loop", spy)
    return seen


# ---------------------------------------------------------------- inner-loop recipe keys

def test_method_keys_override_the_recipe_for_its_loop_only(spy_loop):
    ctx = make_ctx(batch_size=32, schedule="cosine")
    method = build_method({"name": "finetune", "epochs": 1, "lr": 0.01, "optimizer": "adam",
                           "weight_decay": 0.0, "schedule": "constant", "augment": "flip",
                           "bn_mode": "eval"})
    method.unlearn(make_model(), make_data(), ctx)
    assert isinstance(spy_loop["opt"], torch.optim.Adam)
    assert spy_loop["sched"].lr_lambdas[0](3) == 1.0  # constant
    assert spy_loop["recipe"].augment == "flip" and spy_loop["train_mode"] is False
    assert ctx.recipe.schedule == "cosine" and ctx.recipe.optimizer == "sgd"  # the run's recipe is untouched


def test_overrides_equal_to_the_recipe_change_nothing():
    data, ctx = make_data(), make_ctx(batch_size=32)
    r = ctx.recipe
    plain = build_method({"name": "negrad_plus", "epochs": 1}).unlearn(make_model(), data, ctx).model
    pinned = build_method({"name": "negrad_plus", "epochs": 1, "optimizer": r.optimizer, "momentum": r.momentum,
                           "weight_decay": r.weight_decay, "schedule": r.schedule,
                           "final_lr_fraction": r.final_lr_fraction, "augment": r.augment}
                          ).unlearn(make_model(), data, ctx).model
    assert same(plain, pinned)


@pytest.mark.parametrize("key,value", [("schedule", "cosin"), ("optimizer", "lbfgs"), ("augment", "crop"),
                                       ("momentum", -0.1), ("final_lr_fraction", 2.0), ("bn_mode", "frozen")])
def test_bad_override_names_the_method_key(key, value):
    with pytest.raises(ConfigError, match=f"method.{key}"):
        build_method({"name": "finetune", key: value})


def test_gradient_ascent_keeps_its_constant_lr_by_default():
    from unlearnbench.config import compose

    assert compose(["method=gradient_ascent"]).method.schedule == "constant"  # as before: constant


# ---------------------------------------------------------------- random labels

def test_label_draws():
    y = torch.zeros(3000, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    assert (random_wrong_labels(y, 3, g) != y).all()
    drawn = random_any_labels(y, 3, g)
    share_true = float((drawn == y).float().mean())
    assert 0.28 < share_true < 0.39  # 1/3 of draws keep the true class


def test_relabel_mode_is_a_forget_pass_with_fresh_labels_then_a_retain_pass(spy_loop):
    data = make_data()
    method = build_method({"name": "random_label", "epochs": 1, "mode": "relabel", "labels": "any",
                           "batch_size": 10})
    method.unlearn(make_model(), data, make_ctx())
    epochs = [list(spy_loop["batches"](e)) for e in (0, 1)]
    n_f, n_r = len(data.forget) // 10, len(data.retain) // 10
    for batches in epochs:
        assert len(batches) == n_f + n_r
        forget_x = torch.cat([x for x, _ in batches[:n_f]])
        retain_x = torch.cat([x for x, _ in batches[n_f:]])
        assert sorted(forget_x.sum((1, 2, 3)).tolist()) == sorted(data.forget.x.sum((1, 2, 3)).tolist())
        assert sorted(retain_x.sum((1, 2, 3)).tolist()) == sorted(data.retain.x.sum((1, 2, 3)).tolist())
        retain_y = torch.cat([y for _, y in batches[n_f:]])
        assert sorted(retain_y.tolist()) == sorted(data.retain.y.tolist())  # true labels on D_r
    labels = [torch.cat([y for _, y in b[:n_f]]) for b in epochs]
    assert not torch.equal(labels[0], labels[1])  # fresh random labels every pass


def test_mixed_mode_with_wrong_labels_is_todays_default():
    data, ctx = make_data(), make_ctx(batch_size=32)
    a = build_method({"name": "random_label", "epochs": 1}).unlearn(make_model(), data, ctx).model
    b = build_method({"name": "random_label", "epochs": 1, "mode": "mixed", "labels": "wrong"}
                     ).unlearn(make_model(), data, ctx).model
    assert same(a, b)


# ---------------------------------------------------------------- l1 decay per epoch

def test_l1_decay_per_epoch_holds_alpha_within_an_epoch(monkeypatch):
    from unlearnbench.methods import l1_sparse

    calls = []
    real = l1_sparse.l1_weight
    monkeypatch.setattr(l1_sparse, "l1_weight", lambda a, t, total: calls.append((t, total)) or real(a, t, total))
    data = make_data()
    build_method({"name": "l1_sparse", "epochs": 2, "decay": "epoch", "batch_size": 40}).unlearn(
        make_model(), data, make_ctx())
    steps = -(-len(data.retain) // 40)
    assert calls == [(0, 2)] * steps + [(1, 2)] * steps  # α·(1 − epoch/E), DEL's and SalUn's rule
    calls.clear()
    build_method({"name": "l1_sparse", "epochs": 2, "batch_size": 40}).unlearn(make_model(), data, make_ctx())
    assert calls == [(t, 2 * steps) for t in range(2 * steps)]  # default: per step


# ---------------------------------------------------------------- SCRUB

def test_scrub_lr_decay_follows_the_official_rule():
    scrub = Scrub(lr=1.0, lr_decay_epochs=[3, 5, 9], lr_decay_rate=0.1)
    # util.py adjust_learning_rate: ×0.1 for every decay epoch the 1-based epoch exceeds
    assert [scrub.lr_at(e) for e in range(1, 7)] == pytest.approx([1, 1, 1, 0.1, 0.1, 0.01])
    assert Scrub().max_grad_norm is None  # clipping off by default (commented out officially)


def test_scrub_rewind_returns_the_epoch_closest_to_the_validation_error():
    data, model = make_data(), make_model()
    out = build_method({"name": "scrub", "max_steps": 2, "min_steps": 3, "lr": 0.05, "rewind": True,
                        "batch_size": 32, "forget_batch_size": 16}).unlearn(model, data, make_ctx())
    errors, target = out.details["forget_errors"], out.details["target_error"]
    chosen = int(out.stats["rewind_epoch"])
    assert len(errors) == 4  # before training and after each of the 3 epochs
    assert chosen == min(range(4), key=lambda i: abs(errors[i] - target))
    err = float((out.model(data.forget.x).argmax(1) != data.forget.y).float().mean())
    assert err == pytest.approx(errors[chosen])


def test_scrub_without_rewind_or_decay_is_unchanged_by_the_new_keys():
    data, ctx = make_data(), make_ctx()
    keys = {"name": "scrub", "max_steps": 1, "min_steps": 2, "batch_size": 32, "forget_batch_size": 16}
    a = build_method(keys).unlearn(make_model(), data, ctx).model
    b = build_method({**keys, "lr_decay_epochs": [], "rewind": False}).unlearn(make_model(), data, ctx).model
    assert same(a, b)


# ---------------------------------------------------------------- ResNet init, normalisation

def test_resnet_torchvision_init_keeps_the_stem_and_redraws_the_other_convs():
    torch.manual_seed(0)
    default = build_model({"name": "resnet18", "width": 8}, (3, 8, 8), 10)
    torch.manual_seed(0)
    tv = build_model({"name": "resnet18", "width": 8, "init": "torchvision"}, (3, 8, 8), 10)
    assert torch.equal(default.conv1.weight, tv.conv1.weight)  # DEL swaps the stem in after init
    conv = tv.layers[3][1].conv2  # 64 out channels, 3x3: kaiming_normal fan_out std = sqrt(2 / (64·9))
    assert float(conv.weight.std()) == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.1)
    assert not torch.equal(default.layers[0][0].conv1.weight, tv.layers[0][0].conv1.weight)
    with pytest.raises(ConfigError, match="model.init"):
        build_model({"name": "resnet18", "init": "xavier"}, (3, 8, 8), 10)


def test_dataset_mean_std_replace_the_source_constants():
    raw = RawData(np.full((4, 3, 2, 2), 0.5, dtype=np.float32), np.arange(4), np.zeros((2, 3, 2, 2), np.float32),
                  np.arange(2), 4, (0.1, 0.2, 0.3), (1.0, 1.0, 1.0))
    bundle = build_bundle(raw, "t", 0.0, 0, True, mean=[0.5, 0.5, 0.5], std=[0.25, 0.5, 1.0])
    assert torch.allclose(bundle.train.x[0, :, 0, 0], torch.zeros(3))
    assert torch.allclose(bundle.test.x[0, :, 0, 0], torch.tensor([-2.0, -1.0, -0.5]))
    default = build_bundle(copy.deepcopy(raw), "t", 0.0, 0, True)
    assert torch.allclose(default.test.x[0, :, 0, 0], torch.tensor([-0.1, -0.2, -0.3]))


def test_nabla_tau_and_scrub_take_an_augment_key():
    for name in ("nabla_tau", "scrub"):
        with pytest.raises(ConfigError, match="method.augment"):
            build_method({"name": name, "augment": "crop"})
