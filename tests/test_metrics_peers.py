"""js_to_oracle, zrf and relearn_epochs pinned on hand-computed cases."""

import math

import pytest
import torch
from torch import nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators import EvalContext, Scored
from unlearnbench.evaluators.divergence import js_divergence, zero_retrain_forgetting
from unlearnbench.evaluators.relearn import epochs_to_reach, relearn_curve
from unlearnbench.registry import EVALUATORS

LN2 = math.log(2)


pytestmark = pytest.mark.usefixtures("one_thread")


ONE_HOT_0 = [0.0, -1e4]  # softmax (1, 0) exactly in float32
ONE_HOT_1 = [-1e4, 0.0]
UNIFORM = [0.0, 0.0]


def ctx_of(**roles) -> EvalContext:
    run = RunContext(device=torch.device("cpu"), seed=0, recipe=Recipe(), show_progress=False)
    return EvalContext(run=run, scored=roles)


def scored(role, forget, test=None):
    logits = {"forget": forget, **({} if test is None else {"test": test})}
    return Scored.from_logits(role, logits, {s: [0] * len(z) for s, z in logits.items()})


# --- Jensen-Shannon --------------------------------------------------------------------------
def test_js_divergence_by_hand():
    p = torch.tensor([ONE_HOT_0, UNIFORM, ONE_HOT_0])
    q = torch.tensor([ONE_HOT_1, ONE_HOT_0, ONE_HOT_0])
    # disjoint supports: ln 2; (½,½) vs (1,0): m = (¾,¼), JS = ½·½ln(4/3) + ½·ln(4/3) = ¾ln(4/3); equal: 0
    assert js_divergence(p, q).tolist() == pytest.approx([LN2, 0.75 * math.log(4 / 3), 0.0], abs=1e-6)
    assert js_divergence(q, p).tolist() == pytest.approx(js_divergence(p, q).tolist(), abs=1e-7)  # symmetric


def test_js_to_oracle_per_split_and_zero_for_the_oracle():
    oracle = scored("retrain", forget=[ONE_HOT_0, ONE_HOT_0], test=[UNIFORM])
    model = scored("unlearned", forget=[ONE_HOT_1, ONE_HOT_0], test=[ONE_HOT_0])
    ctx = ctx_of(retrain=oracle, unlearned=model)
    ev = EVALUATORS.get("js_to_oracle")()
    out = ev.evaluate(model, ctx)
    assert out["js_to_oracle_forget"] == pytest.approx(LN2 / 2, abs=1e-6)  # mean of ln 2 and 0
    assert out["js_to_oracle_test"] == pytest.approx(0.75 * math.log(4 / 3), abs=1e-6)
    assert ev.evaluate(oracle, ctx) == {"js_to_oracle_forget": 0.0, "js_to_oracle_test": 0.0}


# --- ZRF -------------------------------------------------------------------------------------
def test_zrf_by_hand():
    teacher = torch.tensor([ONE_HOT_1, UNIFORM])
    assert zero_retrain_forgetting(teacher, teacher) == pytest.approx(1.0)  # behaves like the random model
    model = torch.tensor([ONE_HOT_0, ONE_HOT_0])
    # JS = ln 2 on row 1, ¾ln(4/3) on row 2
    assert zero_retrain_forgetting(model, teacher) == pytest.approx(1 - (LN2 + 0.75 * math.log(4 / 3)) / 2, abs=1e-6)


def test_zrf_evaluator_uses_one_seeded_random_teacher_per_run():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    forget = Split(torch.randn(20, 3), torch.zeros(20, dtype=torch.long))
    ctx = ctx_of()
    original = Scored("original", net, {"forget": forget}, ctx.run)
    ctx.scored["original"] = original
    ev = EVALUATORS.get("zrf")()
    first = ev.evaluate(original, ctx)["zrf"]
    assert 1 - LN2 <= first < 1.0
    assert ev.evaluate(original, ctx)["zrf"] == first  # the teacher is drawn once per run
    assert EVALUATORS.get("zrf")().evaluate(original, ctx)["zrf"] == first  # and from the named stream


# --- relearn_epochs --------------------------------------------------------------------------
def test_epochs_to_reach_and_its_cap():
    assert epochs_to_reach([0.95], 0.9, 5) == 0  # already there (the original's row)
    assert epochs_to_reach([0.2, 0.5, 0.9], 0.9, 5) == 2  # ≥ target counts
    assert epochs_to_reach([0.2, 0.5, 0.6], 0.9, 2) == 3  # not within the cap: cap + 1
    assert epochs_to_reach([0.2, 0.5, 0.95], 0.9, 1) == 2  # epochs beyond the cap are ignored


def relearn_setup(lr):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (64,), generator=g)
    forget = Split(torch.randn(64, 2, generator=g) + 3 * (2 * y.float() - 1).unsqueeze(1), y)
    torch.manual_seed(0)
    net = nn.Linear(2, 2)
    with torch.no_grad():  # starts wrong on every example: predicts the other class
        net.weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
        net.bias.zero_()
    ctx = RunContext(device=torch.device("cpu"), seed=0, recipe=Recipe(batch_size=16, momentum=0.0,
                                                                       weight_decay=0.0), show_progress=False)
    return net, forget, ctx, lr


def test_relearn_curve_counts_epochs_and_leaves_the_model_alone():
    net, forget, ctx, _ = relearn_setup(0.5)
    before = [p.detach().clone() for p in net.parameters()]
    curve = relearn_curve(net, forget, 0.95, 10, 0.5, None, ctx)
    assert curve[0] < 0.1 and curve[-1] >= 0.95 and 2 <= len(curve) <= 11
    assert epochs_to_reach(curve, 0.95, 10) == len(curve) - 1
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before))
    too_slow = relearn_curve(net, forget, 0.95, 2, 1e-8, None, ctx)
    assert len(too_slow) == 3 and epochs_to_reach(too_slow, 0.95, 2) == 3


def test_relearn_epochs_is_zero_for_the_original_and_checks_its_keys():
    net, forget, ctx, _ = relearn_setup(0.5)
    ectx = ctx_of()
    original = Scored("original", net, {"forget": forget}, ectx.run)
    ectx.scored["original"] = original
    assert EVALUATORS.get("relearn_epochs")().evaluate(original, ectx) == {"relearn_epochs": 0.0}
    with pytest.raises(ConfigError, match="eval.params.relearn_epochs.max_epochs"):
        EVALUATORS.get("relearn_epochs")(max_epochs=0)
