"""∇τ, SCRUB and SSD: schedule arithmetic, loss behaviour, hand-computed dampening, presets."""

import copy
import math

import pytest
import torch
from torch import nn

from conftest import metric
from unlearnbench.config import compose
from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import UnlearnData, build_method
from unlearnbench.methods.nabla_tau import (NablaTau, alpha0, batch_count, forget_epochs,
                                            nabla_tau_loss)
from unlearnbench.methods.scrub import Scrub, distill_kl
from unlearnbench.methods.ssd import SelectiveSynapticDampening


pytestmark = pytest.mark.usefixtures("one_thread")


def make_ctx(**recipe) -> RunContext:
    return RunContext(device=torch.device("cpu"), seed=0, recipe=Recipe(**recipe),
                      show_progress=False)


def blob_data(n_forget=40, n_retain=200, n_val=60, seed=0) -> UnlearnData:
    """Three Gaussian blobs in 4-D: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 4, generator=g) * 3

    def split(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return Split(centers[y] + torch.randn(n, 4, generator=g), y)

    forget, retain = split(n_forget), split(n_retain)
    return UnlearnData(forget=forget, retain=retain, val=split(n_val),
                       forget_idx=torch.arange(n_forget),
                       retain_idx=torch.arange(n_forget, n_forget + n_retain), num_classes=3)


def small_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


# --- ∇τ -------------------------------------------------------------------------------------

# CIFAR-10, |D| = 50,000, batch 256. The official DataLoaders keep the last partial batch
# (drop_last=False), so batch counts are ceil(n / 256):
#   s = 0.03: |D_f| = 1,500  -> n_F = 6,  |D_r| = 48,500 -> n_R = 190, E = int(190/12*6)  = 95
#   s = 0.15: |D_f| = 7,500  -> n_F = 30, |D_r| = 42,500 -> n_R = 167, E = int(167/60*6)  = 16
#   s = 0.30: |D_f| = 15,000 -> n_F = 59, |D_r| = 35,000 -> n_R = 137, E = int(137/118*6) = 6
# (floor would give n_R = 189, n_F = 5 -> E = 113 at 3 %: the counts matter.)
@pytest.mark.parametrize("s, a0, n_r, n_f, epochs", [
    (0.03, 0.05, 190, 6, 95), (0.15, 0.25, 167, 30, 16), (0.30, 0.5, 137, 59, 6)])
def test_schedule_matches_worked_cifar10_numbers(s, a0, n_r, n_f, epochs):
    n_forget = round(50_000 * s)
    assert batch_count(50_000 - n_forget, 256) == n_r
    assert batch_count(n_forget, 256) == n_f
    assert alpha0(s) == pytest.approx(a0)
    assert forget_epochs(n_r, n_f) == epochs


def test_relu_stops_the_ascent_once_forget_loss_reaches_val_loss():
    model, data = small_mlp(), blob_data()
    logits = model(data.forget.x)
    l_f = nn.functional.cross_entropy(logits, data.forget.y)
    zero_retain = torch.zeros(())
    # L_f above L_v: the forget term contributes no gradient at all.
    above = nabla_tau_loss(l_f, zero_retain, val_loss=l_f.item() - 0.1, alpha=0.5)
    grads = torch.autograd.grad(above, list(model.parameters()), retain_graph=True, allow_unused=True)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)
    # L_f below L_v: d/dL_f of α(L_v - L_f)² = -2α(L_v - L_f) (minimising raises L_f).
    l_f_leaf = l_f.detach().requires_grad_(True)
    below = nabla_tau_loss(l_f_leaf, zero_retain, val_loss=l_f.item() + 0.5, alpha=0.5)
    below.backward()
    assert l_f_leaf.grad.item() == pytest.approx(-2 * 0.5 * 0.5)


def test_alpha_decays_to_zero_over_the_fixed_epochs():
    data, ctx = blob_data(n_forget=40, n_retain=200), make_ctx()
    method = NablaTau(batch_size=16)
    result = method.unlearn(small_mlp(), data, ctx)
    info = {**result.stats, **result.details}
    # s = 40/240; n_F = ceil(40/16) = 3, n_R = ceil(200/16) = 13, E = int(13/6*6) = 13.
    assert info["n_forget_batches"] == 3 and info["n_retain_batches"] == 13
    assert info["epochs"] == 13
    assert info["alpha0"] == pytest.approx(5 / 3 * 40 / 240)
    assert len(info["alphas"]) == 13 and info["alphas"][0] == pytest.approx(info["alpha0"])
    assert info["alphas"][-1] == pytest.approx(info["alpha0"] / 13)
    assert abs(info["alpha_final"]) < 1e-12
    assert info["lrs"][0] == pytest.approx(1e-3)
    assert info["lrs"][-1] == pytest.approx(1e-3 * (1 - 0.9 * 12 / 13))


def noisy_data() -> UnlearnData:
    """Noisy labels: an MLP memorises its training points, so L_f << L_v afterwards."""
    g = torch.Generator().manual_seed(0)

    def split(n):
        x = torch.randn(n, 4, generator=g)
        return Split(x, (x[:, :3] + torch.randn(n, 3, generator=g)).argmax(1))

    return UnlearnData(forget=split(40), retain=split(200), val=split(100),
                       forget_idx=torch.arange(40), retain_idx=torch.arange(40, 240), num_classes=3)


def test_nabla_tau_raises_forget_loss_towards_val_loss_and_honours_max_batches():
    data = noisy_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 3))
    opt = torch.optim.Adam(model.parameters(), 0.01)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.cat([data.forget.x, data.retain.x])),
                                    torch.cat([data.forget.y, data.retain.y])).backward()
        opt.step()

    def loss(m, split):
        with torch.no_grad():
            return nn.functional.cross_entropy(m(split.x), split.y).item()

    before_f, before_v = loss(model, data.forget), loss(model, data.val)
    assert before_f < 0.3 < 2.0 < before_v
    after = NablaTau(batch_size=8).unlearn(copy.deepcopy(model), data, make_ctx()).model
    # α0 ≈ 0 is plain finetuning on the same batches: the forget term is what lifts L_f.
    tuned = NablaTau(batch_size=8, alpha0_scale=1e-9).unlearn(copy.deepcopy(model), data, make_ctx()).model
    assert loss(after, data.forget) > before_f + 0.1
    assert loss(after, data.forget) > loss(tuned, data.forget) + 0.1
    assert loss(after, data.forget) < before_v  # lifted towards L_v, not past it
    capped = make_ctx(max_batches=1)
    result = NablaTau(batch_size=8).unlearn(copy.deepcopy(model), data, capped)
    assert result.details["steps"] == [1] * result.stats["epochs"]


def test_nabla_tau_bad_keys_name_the_key():
    for key, value in (("bn_mode", "frozen"), ("lr", 0), ("val_source", "test"),
                       ("final_lr_factor", 0), ("refresh_every", 0), ("weight_decay", -1)):
        with pytest.raises(ConfigError, match=f"method.{key}"):
            build_method({"name": "nabla_tau", key: value})
    with pytest.raises(ConfigError, match="method.alpha0"):
        build_method({"name": "nabla_tau", "alpha0": 0.1})  # the key is alpha0_scale


# --- SCRUB ----------------------------------------------------------------------------------

def test_distill_kl_hand_computed():
    # p_t = softmax([ln 3, 0]) = (3/4, 1/4), p_s = (1/2, 1/2):
    # KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.130812...; with T = 2 the logits are doubled and ×T².
    student, teacher = torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]])
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert distill_kl(student, teacher, 1.0).item() == pytest.approx(kl, rel=1e-5)
    assert distill_kl(student, 2 * teacher, 2.0).item() == pytest.approx(4 * kl, rel=1e-5)
    assert distill_kl(teacher, teacher, 4.0).item() == pytest.approx(0.0, abs=1e-7)


def test_scrub_max_steps_move_away_from_teacher_and_zero_weights_move_nothing():
    data, ctx = blob_data(), make_ctx()
    teacher = small_mlp()
    # No max-step, zero min-step weights, no decay: the loss is 0, the weights must not move.
    still = Scrub(max_steps=0, min_steps=1, alpha=0, gamma=0, weight_decay=0).unlearn(
        copy.deepcopy(teacher), data, ctx).model
    for a, b in zip(still.parameters(), teacher.parameters()):
        assert torch.equal(a, b)
    # KL(teacher‖student) has zero gradient at student = teacher, so a lone max-step from
    # the start cannot move; once a min-epoch has moved the student, max-steps push it away
    # from the teacher on D_f: compare the same min-epochs with and without max-steps.
    lone = Scrub(max_steps=1, min_steps=1, alpha=0, gamma=0, weight_decay=0).unlearn(
        copy.deepcopy(teacher), data, ctx).model
    assert all(torch.equal(a, b) for a, b in zip(lone.parameters(), teacher.parameters()))

    def forget_gap(max_steps, **kw):
        student = Scrub(max_steps=max_steps, min_steps=3, lr=0.05, forget_batch_size=16,
                        **kw).unlearn(copy.deepcopy(teacher), data, make_ctx()).model
        with torch.no_grad():
            return distill_kl(student(data.forget.x), teacher(data.forget.x), 4.0).item()

    assert forget_gap(3) > 2 * forget_gap(0)  # default: max-step gradients clipped to norm 1
    assert forget_gap(3, max_grad_norm=None) > 10 * forget_gap(0)
    # Clipping applies to max-steps only: with a vanishing norm (and no momentum or decay
    # carrying min-step updates into them) the max-steps do nothing.
    plain = dict(momentum=0, weight_decay=0)
    assert forget_gap(3, max_grad_norm=1e-12, **plain) == pytest.approx(forget_gap(0, **plain), rel=1e-4)
    with pytest.raises(ConfigError, match="method.temperature"):
        build_method({"name": "scrub", "temperature": 0})


# --- SSD ------------------------------------------------------------------------------------

def test_ssd_dampens_exactly_the_selected_parameters_by_beta():
    # Linear 2->2 without bias. The forget example uses input feature 0 only, the retain
    # examples feature 1 only, so column 0 of W gets gradient only from D_f and column 1
    # only from D_r. One batch each (batch_size 8): g_f[:, 0] = (p_f - y_f) and, over
    # D = 1 forget + 3 retain examples, g_D[:, 0] = (p_f - y_f) / 4. Hence for column 0
    # I_f / I_D = 16 > α = 10 -> selected, β = λ·I_D/I_f = 1/16; column 1 has I_f = 0.
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, 1.0], [-0.5, 2.0]]))
    before = model.weight.detach().clone()
    forget = Split(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    retain = Split(torch.tensor([[0.0, 1.0]] * 3), torch.tensor([0, 1, 1]))
    data = UnlearnData(forget=forget, retain=retain, val=retain, forget_idx=torch.tensor([0]),
                       retain_idx=torch.tensor([1, 2, 3]), num_classes=2)
    ctx = make_ctx()
    result = SelectiveSynapticDampening(lam=1.0, alpha=10.0, batch_size=8).unlearn(model, data, ctx)
    torch.testing.assert_close(model.weight[:, 0], before[:, 0] / 16, rtol=1e-6, atol=0)
    assert torch.equal(model.weight[:, 1], before[:, 1])  # unselected: bit-identical
    assert result.stats["dampened"] == 2
    assert ctx.timings["precompute_s"] > 0
    # With α = 20 the ratio 16 does not pass the threshold: nothing changes.
    model.weight.data.copy_(before)
    SelectiveSynapticDampening(lam=1.0, alpha=20.0, batch_size=8).unlearn(model, data, make_ctx()).model
    assert torch.equal(model.weight, before)
    # λ = 4 gives β = 4/16.
    SelectiveSynapticDampening(lam=4.0, alpha=10.0, batch_size=8).unlearn(model, data, make_ctx()).model
    torch.testing.assert_close(model.weight[:, 0], before[:, 0] / 4, rtol=1e-6, atol=0)


# --- pipeline and presets -------------------------------------------------------------------

@pytest.mark.parametrize("method", ["nabla_tau", "scrub", "ssd"])
def test_methods_run_in_the_pipeline(run_pipeline, method):
    frame = run_pipeline([f"method={method}"])
    from unlearnbench.registry import METHODS

    assert str(frame.method_version.iloc[0]) == METHODS.get(method).version
    assert 0.0 <= metric(frame, "forget_acc") <= 1.0


PRESETS = {"nabla_tau_cifar10": ("cifar10", 0.03), "nabla_tau_cifar10_15": ("cifar10", 0.15),
           "nabla_tau_cifar10_30": ("cifar10", 0.30), "nabla_tau_cifar100": ("cifar100", 0.03)}


@pytest.mark.parametrize("experiment", sorted(PRESETS))
def test_presets_pin_the_official_recipe(run_cfg, experiment):
    cfg = run_cfg([f"experiment={experiment}"])
    dataset, fraction = PRESETS[experiment]
    assert cfg.experiment_name == experiment and cfg.dataset.name == dataset
    assert cfg.forget.name == "random" and cfg.forget.fraction == fraction
    assert cfg.model.name == "resnet18" and cfg.model.stem == "imagenet"
    assert cfg.method.name == "nabla_tau" and cfg.method.batch_size == 256
    assert "mia_lr" in cfg.eval.evaluators
    t = cfg.train  # debug=smoke (composed last) shrinks epochs and steps only
    # TRAIN_Cifar*.ipynb (dnl-trpp/Nabla-Tau@1012093): batch 256 (CIFAR-10) / 128 (CIFAR-100),
    # LinearLR end_factor 0.001, the notebooks' normalisation constants
    batch = 128 if dataset == "cifar100" else 256
    assert (t.batch_size, t.optimizer, t.lr, t.momentum, t.weight_decay) == (batch, "sgd", 0.1, 0.9, 5e-4)
    assert (t.schedule, t.final_lr_fraction, t.augment) == ("linear", 0.001, "crop_flip")
    std = [0.2675, 0.2565, 0.2761] if dataset == "cifar100" else [0.2023, 0.1994, 0.2010]
    assert list(cfg.dataset.std) == std
    assert cfg.method.augment == "none"  # the unlearning loaders normalise only
    assert compose([f"experiment={experiment}"]).train.epochs == 50  # without debug=smoke


@pytest.mark.slow
@pytest.mark.parametrize("experiment, root_fixture", [
    ("nabla_tau_cifar10", "tiny_cifar10_root"), ("nabla_tau_cifar10_30", "tiny_cifar10_root"),
    ("nabla_tau_cifar100", "tiny_cifar100_root")])
def test_presets_run_on_tiny_cifar_files(run_pipeline, request, experiment, root_fixture):
    root = request.getfixturevalue(root_fixture)
    # Small batches keep the ImageNet-stem ResNet-18 quick on CPU; everything else is the preset.
    overrides = [f"experiment={experiment}", f"data_root={root}", "dataset.download=false",
                 "dataset.verify_md5=false", "train.batch_size=16", "method.batch_size=64",
                 "train.epochs=1", "train.max_batches=2", f"cache_dir={root}/cache"]
    frame = run_pipeline(overrides)
    assert frame.experiment.iloc[0] == experiment
    assert frame.dataset.iloc[0] == PRESETS[experiment][0]
    assert 0.0 <= metric(frame, "test_acc") <= 1.0
