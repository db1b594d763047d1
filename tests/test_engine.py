"""The engine: augmentation against a per-image reference, batches' draws, lr scaling,
torch.compile wiring, thread settings, and (with CUDA) layout and no step-loop syncs."""

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext, configure_threads, fit, make_optimizer, predict
from unlearnbench.engine.augment import augment_batch
from unlearnbench.engine.context import available_cores
from unlearnbench.engine.loop import batches, compile_model
from unlearnbench.errors import ConfigError

CPU = torch.device("cpu")


def reference_crop_flip(x, flip, dy, dx, pad=4):
    """Slow per-image version: flip, zero-pad by ``pad``, cut the H x W window at (dy, dx)."""
    out = []
    h, w = x.shape[-2:]
    for img, f, oy, ox in zip(x, flip.tolist(), dy.tolist(), dx.tolist()):
        img = img.flip(-1) if f else img
        padded = F.pad(img, (pad, pad, pad, pad))
        out.append(padded[:, oy:oy + h, ox:ox + w])
    return torch.stack(out)


def test_crop_flip_matches_per_image_reference():
    x = torch.randn(16, 3, 7, 9)
    got = augment_batch(x, "crop_flip", torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the documented draw order: flips, then dy, then dx
    flip = torch.rand(16, generator=g).lt(0.5)
    dy, dx = torch.randint(0, 9, (16,), generator=g), torch.randint(0, 9, (16,), generator=g)
    assert 0 < int(flip.sum()) < 16 and len(set(dy.tolist())) > 1  # the draws vary
    torch.testing.assert_close(got, reference_crop_flip(x, flip, dy, dx), rtol=0, atol=0)


def test_flip_only_and_none():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    g = torch.Generator().manual_seed(0)
    flip = torch.rand(2, generator=torch.Generator().manual_seed(0)).lt(0.5)
    want = torch.stack([xi.flip(-1) if f else xi for xi, f in zip(x, flip.tolist())])
    assert torch.equal(augment_batch(x, "flip", g), want)
    assert augment_batch(x, "none") is x


def test_batches_draw_one_epoch_at_once():
    """Order and augmentation of a whole epoch come from one seeded draw: randperm, flips, dy, dx."""
    n = 10
    split = Split(torch.randn(n, 2, 5, 5), torch.arange(n))
    got = list(batches(split, 4, torch.Generator().manual_seed(1), augment="crop_flip"))
    assert [len(y) for _, y in got] == [4, 4, 2]
    g = torch.Generator().manual_seed(1)
    order = torch.randperm(n, generator=g)
    flip = torch.rand(n, generator=g).lt(0.5)
    dy, dx = torch.randint(0, 9, (n,), generator=g), torch.randint(0, 9, (n,), generator=g)
    assert torch.equal(torch.cat([y for _, y in got]), order)
    want = reference_crop_flip(split.x[order], flip, dy, dx)
    torch.testing.assert_close(torch.cat([x for x, _ in got]), want, rtol=0, atol=0)


def test_lr_scaling():
    base = dict(lr=0.1, batch_size=512, base_batch_size=128)
    assert Recipe(**base).scaled_lr == 0.1  # none: lr as configured
    assert Recipe(**base, lr_scaling="linear").scaled_lr == pytest.approx(0.4)
    assert Recipe(**base, lr_scaling="sqrt").scaled_lr == pytest.approx(0.2)
    opt = make_optimizer([nn.Parameter(torch.zeros(1))], Recipe(**base, lr_scaling="linear"))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.4)
    opt = make_optimizer([nn.Parameter(torch.zeros(1))], Recipe(**base, lr_scaling="linear"), lr=0.3)
    assert opt.param_groups[0]["lr"] == 0.3  # an explicit (method) lr is not rescaled
    with pytest.raises(ConfigError, match="train.lr_scaling"):
        Recipe.from_cfg({"lr_scaling": "quadratic"})
    with pytest.raises(ConfigError, match="train.base_batch_size"):
        Recipe.from_cfg({"base_batch_size": 0})


def test_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's setting is kept
        assert configure_threads(None) == 1 == torch.get_num_threads()
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert configure_threads(None) == available_cores() == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="threads"):
        configure_threads(0)


def _toy(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 4, 4, generator=g)
    return Split(x, (x.sum((1, 2, 3)) > 0).long())


def test_compile_flag_is_ignored_on_cpu(caplog):
    recipe = Recipe(epochs=1, batch_size=16, compile=True)
    ctx = RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    before = model[1].weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="unlearnbench"):
        out = fit(model, _toy(), recipe, ctx, desc="t")
    assert out is model and not torch.equal(before, model[1].weight)
    assert "ignored on CPU" in caplog.text


def test_training_through_a_compiled_wrapper_trains_the_model():
    """The wiring fit uses on CUDA, exercised with the compiler-free ``eager`` backend."""
    recipe = Recipe(epochs=1, batch_size=16, compile=True)
    ctx = RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    twin = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    twin.load_state_dict(model.state_dict())
    net = compile_model(model, ctx, True, backend="eager")
    assert net is not model
    from unlearnbench.engine.loop import cross_entropy, make_scheduler, train_loop

    for m in (net, twin):
        opt = make_optimizer(m.parameters(), recipe)
        train_loop(m, lambda _: batches(_toy(), 16, torch.Generator().manual_seed(0)),
                   cross_entropy(), opt, 1, ctx, "t", make_scheduler(opt, recipe, 4))
    assert set(model.state_dict()) == {"1.weight", "1.bias"}  # no _orig_mod. prefix
    torch.testing.assert_close(model.state_dict(), twin.state_dict())


def test_slow_epochs_get_a_step_level_bar(monkeypatch):
    """After an epoch slower than STEP_BAR_AFTER_S, the next epochs' batches get their own bar."""
    from unlearnbench.engine import loop
    from unlearnbench.engine.loop import cross_entropy, train_loop

    bars = []

    class Bar(list):  # what the loop needs of a tqdm bar
        def set_postfix(self, **_):
            pass

    monkeypatch.setattr(RunContext, "progress",
                        lambda self, it, desc, total=None, leave=False: bars.append((desc, total)) or Bar(it))
    recipe = Recipe(epochs=2, batch_size=16)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    run = lambda ctx: train_loop(model, lambda _: batches(_toy(), 16, torch.Generator().manual_seed(0)),
                                 cross_entropy(), make_optimizer(model.parameters(), recipe), 2, ctx, "t")
    run(RunContext(device=CPU, seed=0, recipe=recipe, show_progress=True))
    assert bars == [("t", None)]  # fast epochs: the epoch bar only
    bars.clear()
    monkeypatch.setattr(loop, "STEP_BAR_AFTER_S", 0.0)
    run(RunContext(device=CPU, seed=0, recipe=recipe, show_progress=True))
    assert bars == [("t", None), ("t epoch 2", len(_toy()) // 16 + (len(_toy()) % 16 > 0))]
    bars.clear()
    run(RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False))
    assert bars == [("t", None)]  # no bars shown: no step bar set up either


def test_predict_is_batched_and_exact():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).train()
    ctx = RunContext(device=CPU, seed=0, recipe=Recipe(eval_batch_size=7),
                     show_progress=False)
    x = _toy(20).x
    out = predict(model, x, ctx)
    torch.testing.assert_close(out, model(x))
    assert model.training and not out.requires_grad


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_step_loop_never_syncs_and_inputs_are_channels_last():
    dev = torch.device("cuda")
    recipe = Recipe(epochs=2, batch_size=32, augment="crop_flip")
    ctx = RunContext(device=dev, seed=0, recipe=recipe, show_progress=False)
    split = Split(torch.randn(256, 3, 8, 8, device=dev), torch.randint(0, 2, (256,), device=dev))
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 2)).to(dev).to(memory_format=torch.channels_last)
    xb, _ = next(batches(split, 32, torch.Generator().manual_seed(0), augment="crop_flip"))
    assert xb.is_contiguous(memory_format=torch.channels_last)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call in the loop raises
    try:
        fit(model, split, recipe, ctx, desc="sync")
        logits = predict(model, split.x, ctx)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert logits.shape == (256, 2) and logits.dtype == torch.float32


def test_named_streams_are_independent_and_reproducible():
    from unlearnbench.engine.context import stream_seed

    ctx = RunContext(device=CPU, seed=0, recipe=None, show_progress=False)
    a = torch.rand(5, generator=ctx.generator("localize_mask"))
    assert torch.equal(a, torch.rand(5, generator=ctx.generator("localize_mask")))
    assert not torch.equal(a, torch.rand(5, generator=ctx.generator("perturb_noise")))
    other_seed = RunContext(device=CPU, seed=1, recipe=None, show_progress=False)
    assert not torch.equal(a, torch.rand(5, generator=other_seed.generator("localize_mask")))
    assert 0 <= stream_seed(2**40, "x") < 2**63
    with pytest.raises(TypeError, match="named"):
        ctx.generator(31)

