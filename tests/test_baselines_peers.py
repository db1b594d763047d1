"""bad_teacher, unsir, sfron, scar, eu_k, cf_k: each method's defining mechanism."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext
from unlearnbench.errors import ConfigError
from unlearnbench.methods.bad_teacher import BadTeacher, bad_teacher_loss
from unlearnbench.methods.base import UnlearnData
from unlearnbench.methods.cf_k import CatastrophicForgettingLastK
from unlearnbench.methods.eu_k import ExactUnlearningLastK
from unlearnbench.methods.last_layers import last_layers
from unlearnbench.methods.localize import fresh_init
from unlearnbench.methods.scar import Scar, closest_other, mahalanobis, shrink
from unlearnbench.methods.sfron import SFRon, adaptive_ce, cosine_weight, saliency_ratio_mask
from unlearnbench.methods.unsir import Unsir, error_maximising_noise, per_class_sample


pytestmark = pytest.mark.usefixtures("one_thread")


def make_ctx(**recipe) -> RunContext:
    return RunContext(device=torch.device("cpu"), seed=0, recipe=Recipe(**recipe), show_progress=False)


class TinyNet(nn.Module):
    """features -> fc, like every registered model (``classifier_of`` reads ``fc``)."""

    def __init__(self, classes=3):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(self.features(x))


def blobs(forget_classes=None, n_forget=45, n_retain=240, seed=0) -> UnlearnData:
    """Three separable Gaussian blobs in 4-D; ``forget_classes`` = class forgetting."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]])

    def split(n, classes):
        y = torch.tensor(classes)[torch.randint(0, len(classes), (n,), generator=g)]
        return Split(centers[y] + torch.randn(n, 4, generator=g), y)

    keep = [c for c in range(3) if c not in (forget_classes or [])]
    forget = split(n_forget, forget_classes or [0, 1, 2])
    retain = split(n_retain, keep)
    return UnlearnData(forget=forget, retain=retain, val=split(60, [0, 1, 2]), forget_idx=torch.arange(n_forget),
                       retain_idx=torch.arange(n_forget, n_forget + n_retain), num_classes=3)


def trained(data: UnlearnData, epochs=60) -> nn.Module:
    torch.manual_seed(0)
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.cat([data.forget.x, data.retain.x]), torch.cat([data.forget.y, data.retain.y])
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def kl(p_logits, q_logits):
    """KL(softmax(p) ‖ softmax(q)), mean over rows."""
    return F.kl_div(q_logits.log_softmax(1), p_logits.log_softmax(1), log_target=True, reduction="batchmean")


# --- bad_teacher -----------------------------------------------------------------------------
def test_bad_teacher_loss_is_the_official_elementwise_mean_kl():
    student = torch.tensor([[math.log(3.0), 0.0]])  # softmax (3/4, 1/4)
    competent, incompetent = torch.tensor([[0.0, 0.0]]), torch.tensor([[5.0, 0.0]])
    # retain row: teacher (1/2, 1/2); KL = ½ln(½/¾) + ½ln(½/¼), divided by the 2 classes
    expected = (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) / 2
    got = bad_teacher_loss(student, torch.tensor([0]), competent, incompetent, 1.0)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # forget row: the incompetent teacher is the target; a student equal to it costs 0
    same = bad_teacher_loss(incompetent, torch.tensor([1]), competent, incompetent, 1.0)
    assert float(same) == pytest.approx(0, abs=1e-7)


def test_bad_teacher_moves_forget_outputs_to_the_incompetent_teacher_and_keeps_retain():
    data, ctx = blobs(), make_ctx(batch_size=32)
    original = trained(data)
    teacher = fresh_init(original, ctx, "incompetent_teacher")  # the stream the method draws
    model = BadTeacher(epochs=20, lr=0.01, batch_size=32).unlearn(copy.deepcopy(original), data, ctx).model
    with torch.no_grad():
        before = kl(teacher(data.forget.x), original(data.forget.x))
        after = kl(teacher(data.forget.x), model(data.forget.x))
        retain_drift = kl(original(data.retain.x), model(data.retain.x))
    assert after < 0.2 * before, (before, after)
    assert retain_drift < after + 0.05


def test_bad_teacher_rejects_a_bad_retain_fraction():
    with pytest.raises(ConfigError, match="method.retain_fraction"):
        BadTeacher(retain_fraction=0.0)


# --- unsir -----------------------------------------------------------------------------------
def test_unsir_noise_maximises_the_forget_class_loss():
    data = blobs()
    model = trained(data)
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    noise = error_maximising_noise(model, 0, (32, 4), steps=40, lr=0.1, l2=0.1, generator=gen, device="cpu")
    target = torch.zeros(32, dtype=torch.long)
    with torch.no_grad():
        assert F.cross_entropy(model(noise), target) > F.cross_entropy(model(start), target) + 1.0


def test_unsir_noise_batches_per_forget_class_and_retain_sample_per_class():
    data, ctx = blobs(forget_classes=[1]), make_ctx()
    method = Unsir(noise_batch=8, noise_steps=3, noise_repeats=5, retain_per_class=30)
    noise = method.noise_split(trained(data, epochs=5), data.forget, ctx)
    assert noise.y.tolist() == [1] * 40  # one class in D_f: 8 inputs × 5 repeats, labelled 1
    assert torch.equal(noise.x[:8], noise.x[8:16])  # repeats are copies of one batch
    sample = per_class_sample(data.retain, 30, torch.Generator().manual_seed(0))
    assert torch.bincount(sample.y, minlength=3).tolist() == [30, 0, 30]


def test_unsir_impairs_then_repairs_and_reports_what_it_used():
    data, ctx = blobs(forget_classes=[1], n_forget=60), make_ctx()
    original = trained(data)
    out = Unsir(noise_batch=16, noise_steps=5, retain_per_class=50, batch_size=32).unlearn(
        copy.deepcopy(original), data, ctx)
    assert out.stats == {"noise_classes": 1.0, "retain_used": 100.0}
    assert any(not torch.equal(p, p0) for p, p0 in zip(out.model.parameters(), original.parameters()))


# --- sfron -----------------------------------------------------------------------------------
def test_adaptive_ce_weights_examples_by_inverse_loss_power():
    # two examples with CE 1 and 4, λ = ½: c = (1, ½), w = 2c/Σc = (4/3, 2/3); mean(w·CE) = 2
    logits = torch.log(torch.tensor([[math.exp(-1.0), 1 - math.exp(-1.0)], [math.exp(-4.0), 1 - math.exp(-4.0)]]))
    y = torch.tensor([0, 0])
    assert float(adaptive_ce(logits, y, 0.5)) == pytest.approx(2.0, rel=1e-5)
    assert float(adaptive_ce(logits, y, 0.0)) == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)


def test_sfron_mask_is_the_fisher_ratio_and_forget_steps_move_only_masked_elements():
    mask = saliency_ratio_mask([torch.tensor([2.0, 1.0, 0.0])], [torch.tensor([1.0, 2.0, 0.0])], 1.0)
    assert mask[0].tolist() == [True, False, True]  # 0/0 -> (1e-15)/(1e-15) = 1 ≥ 1
    assert cosine_weight(25.0, 0, 100) == 25.0 and cosine_weight(25.0, 50, 100) == pytest.approx(12.5)
    data, ctx = blobs(), make_ctx()
    model = trained(data, epochs=5)
    method = SFRon(batch_size=16)
    params = list(model.parameters())
    masks = method.mask(model, data, ctx)
    before = [p.detach().clone() for p in params]
    opt = torch.optim.SGD(params, lr=0.1)  # no momentum / decay: only the gradient moves weights
    method.forget_step(model, params, masks, opt, (data.forget.x[:16], data.forget.y[:16]), 25.0, ctx)
    moved = sum(int((p != b).sum()) for p, b in zip(params, before))
    assert moved > 0
    for p, b, m in zip(params, before, masks):
        assert torch.equal(p[~m], b[~m])


def test_sfron_reports_its_mask_and_forget_steps():
    data, ctx = blobs(), make_ctx()
    out = SFRon(iters=10, forget_every=5, batch_size=16).unlearn(trained(data, epochs=5), data, ctx)
    assert out.stats["forget_steps"] == 2.0
    assert 0.0 < out.stats["mask_fraction"] < 1.0


# --- scar ------------------------------------------------------------------------------------
def test_scar_shrinkage_and_distances_by_hand():
    cov = torch.tensor([[2.0, 1.0], [1.0, 4.0]])
    # + γ1·I·mean(diag) = +1·3 on the diagonal, + γ2·(1 − I)·mean(off-diag) = +2·1 off it
    assert shrink(cov, 1.0, 2.0).tolist() == [[5.0, 3.0], [3.0, 7.0]]
    feats = torch.tensor([[4.0, 0.0]])  # Tukey δ=½ -> (2, 0) -> normalised (1, 0)
    means = torch.tensor([[1.0, 0.0], [0.0, 9.0]])  # normalised (1, 0), (0, 1)
    d = mahalanobis(feats, means, torch.eye(2).repeat(2, 1, 1), 0.5)
    assert d.tolist() == [[0.0, 2.0]]  # identity S⁻¹: squared Euclidean distance
    # the nearest distribution is the example's own class 0, so the target is class 1
    assert closest_other(d, torch.tensor([0]), torch.tensor([0, 1])).tolist() == [1]


def test_scar_class_removal_lowers_forget_accuracy_without_training_on_retain():
    data, ctx = blobs(forget_classes=[2], n_forget=60), make_ctx(eval_batch_size=512)
    original = trained(data)
    method = Scar(epochs=6, lr=0.01, batch_size=32, surrogate_size=256, surrogate_steps=2)
    out = method.unlearn(copy.deepcopy(original), data, ctx)
    acc = lambda m, s: float(m(s.x).argmax(1).eq(s.y).float().mean())  # noqa: E731
    with torch.no_grad():
        assert acc(out.model, data.forget) < acc(original, data.forget) - 0.5
        assert acc(out.model, data.retain) > 0.8
    assert out.stats["class_removal"] == 1.0


def test_scar_rejects_unknown_class_stats():
    with pytest.raises(ConfigError, match="method.class_stats"):
        Scar(class_stats="test")


# --- eu_k / cf_k -----------------------------------------------------------------------------
def test_last_layers_follow_goel_et_al():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2),
                        nn.Flatten(), nn.Linear(8, 3))
    # from the output back: Linear (1), BN, Conv (2) -> k=2 stops there, the first BN excluded
    assert last_layers(net, 2) == [net[5], net[3], net[2]]
    assert last_layers(net, 1) == [net[5]]
    with pytest.raises(ConfigError, match="method.k"):
        last_layers(net, 4)


@pytest.mark.parametrize("method", [ExactUnlearningLastK, CatastrophicForgettingLastK])
def test_last_k_trains_only_the_last_k_layers(method):
    data, ctx = blobs(), make_ctx(batch_size=32, epochs=2)
    original = trained(data)
    model = method(k=2, epochs=1, lr=1e-9).unlearn(copy.deepcopy(original), data, ctx).model
    first = [n for n, _ in original.named_parameters() if n.startswith("features.0")]
    for (name, p), p0 in zip(model.named_parameters(), original.parameters()):
        assert p.requires_grad  # frozen only while training
        if name in first:
            assert torch.equal(p, p0), name  # frozen: bit-identical
        elif method is ExactUnlearningLastK:
            assert not torch.allclose(p, p0, atol=1e-3), name  # re-initialised (lr ≈ 0 keeps the init)
            if name.endswith("bias"):
                assert torch.allclose(p, torch.zeros_like(p), atol=1e-6)
        else:
            assert torch.allclose(p, p0, atol=1e-6), name  # finetuned from θ_o, not re-initialised


def test_eu_k_retraining_recovers_accuracy_on_retain():
    data, ctx = blobs(), make_ctx(batch_size=32, epochs=15, lr=0.05)
    out = ExactUnlearningLastK(k=2).unlearn(trained(data), data, ctx)
    with torch.no_grad():
        assert float(out.model(data.retain.x).argmax(1).eq(data.retain.y).float().mean()) > 0.9
    assert 0 < out.stats["trainable_fraction"] < 1
