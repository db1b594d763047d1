"""Every metric definition pinned on hand-computed cases, then on real pipeline runs."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import metric
from unlearnbench.engine import RunContext
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators import EvalContext, Scored, build_evaluators
from unlearnbench.evaluators.mia_lr import lr_mia_accuracy
from unlearnbench.evaluators.mia_svc import svc_efficacy
from unlearnbench.plan import plan
from unlearnbench.registry import EVALUATORS

EVAL_PRESETS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "eval").glob("*.yaml"))


# ---------------------------------------------------------------- hand-made Scored objects
def conf_logits(p):
    """Two-class logits whose true-label (class 0) softmax probability is exactly ``p``."""
    p = np.asarray(p, dtype=np.float64)
    return np.stack([np.log(p), np.log1p(-p)], 1)


def loss_logits(loss):
    """Two-class logits whose cross-entropy on label 0 is exactly ``loss``."""
    return conf_logits(np.exp(-np.asarray(loss, dtype=np.float64)))


def correct_logits(correct):
    """Logits that classify label 0 correctly exactly where ``correct`` is true."""
    return np.array([[1.0, 0.0] if c else [0.0, 1.0] for c in correct])


def scored(role, **logits):
    return Scored.from_logits(role, logits, {s: np.zeros(len(z), dtype=int) for s, z in logits.items()})


def from_correct(role, **correct):
    return scored(role, **{s: correct_logits(c) for s, c in correct.items()})


def eval_ctx(seed=0, timings=None, results=None, **roles):
    run = RunContext(device=torch.device("cpu"), seed=seed, recipe=None)
    return EvalContext(run=run, scored=roles, timings=timings or {}, results=results or {})


def evaluate(name, model, ctx, **params):
    """One evaluator on one model; the order check of build_evaluators is tested apart."""
    return EVALUATORS.get(name)(**params).evaluate(model, ctx)


# ---------------------------------------------------------------- Scored.from_logits
def test_scored_from_logits_derives_losses_and_confidence():
    s = scored("unlearned", forget=loss_logits([0.1, 2.0]))
    assert s.losses("forget").tolist() == pytest.approx([0.1, 2.0], abs=1e-6)
    assert s.true_confidence("forget").tolist() == pytest.approx([math.exp(-0.1), math.exp(-2.0)], abs=1e-6)
    assert s.accuracy("forget") == 0.5  # p = e^-0.1 > 0.5 is right, p = e^-2 < 0.5 is wrong
    with pytest.raises(ValueError, match="forget"):
        Scored.from_logits("x", {"forget": np.zeros((3, 2))}, {"forget": [0, 0]})


# ---------------------------------------------------------------- loss AUC
def test_mia_loss_auc_by_hand():
    # member losses [0.1, 0.2] vs non-members [0.3, 0.05]: each member beats 0.3, loses to 0.05
    model = scored("unlearned", forget=loss_logits([0.1, 0.2]), test=loss_logits([0.3, 0.05]))
    assert evaluate("mia_loss", model, eval_ctx())["mia_loss_auc"] == pytest.approx(0.5)
    model = scored("unlearned", forget=loss_logits([0.1, 0.2]), test=loss_logits([0.3, 0.15]))
    assert evaluate("mia_loss", model, eval_ctx())["mia_loss_auc"] == pytest.approx(0.75)


def test_mia_loss_auc_counts_a_nan_loss_as_infinite():
    nan = [np.nan, 0.0]
    # member 1 is NaN (= +inf loss): beats nothing, ties nothing; member 2 (0.1) beats both
    model = scored("unlearned", forget=np.array([nan, loss_logits([0.1])[0]]), test=loss_logits([0.3, 0.15]))
    assert evaluate("mia_loss", model, eval_ctx())["mia_loss_auc"] == pytest.approx(2 / 4)
    # a fully diverged model: every loss NaN, every pair tied -> chance
    model = scored("unlearned", forget=np.array([nan, nan]), test=np.array([nan, nan, nan]))
    assert evaluate("mia_loss", model, eval_ctx())["mia_loss_auc"] == pytest.approx(0.5)


def test_mia_loss_auc_is_undefined_without_members_or_non_members():
    from unlearnbench.evaluators.mia_loss import loss_auc

    assert math.isnan(loss_auc(np.array([]), np.array([0.3])))
    assert math.isnan(loss_auc(np.array([0.1]), np.array([])))


# ---------------------------------------------------------------- the tuning objective
def test_val_avg_gap_by_hand_reads_no_test_split():
    # Two-class logits: an example is right iff its loss < ln 2. No split "test" exists here,
    # so reading it would raise: the objective never sees D_t.
    model = scored("unlearned", forget=loss_logits([0.1, 2.0]),           # FA 0.5
                   retain=loss_logits([0.2, 0.3, 1.0, 0.1]),             # RA 0.75
                   val=loss_logits([0.5, 1.5]))                          # VA 0.5
    oracle = scored("retrain", forget=loss_logits([1.0, 3.0]),            # FA 0
                    retain=loss_logits([0.1] * 4), val=loss_logits([0.2, 0.4]))  # RA 1, VA 1
    got = evaluate("val_gap", model, eval_ctx(retrain=oracle))
    # AUC: member 0.1 beats both val losses, member 2.0 beats neither -> 2/4; the oracle's
    # members lose every pair -> 0. Gaps 0.5, 0.25, 0.5, 0.5.
    assert got["mia_loss_val_auc"] == pytest.approx(0.5)
    assert got["val_avg_gap"] == pytest.approx((0.5 + 0.25 + 0.5 + 0.5) / 4)
    assert evaluate("val_gap", oracle, eval_ctx(retrain=oracle)) == pytest.approx(
        {"mia_loss_val_auc": 0.0, "val_avg_gap": 0.0})


# ---------------------------------------------------------------- ToW, Avg.Gap
def test_tow_and_avg_gap_from_known_accuracies():
    oracle = from_correct("retrain", forget=[1, 1, 1, 0], retain=[1, 1, 1, 1], test=[1, 1, 0, 0])
    model = from_correct("unlearned", forget=[1, 0, 0, 0], retain=[1, 1, 1, 0], test=[0, 0, 1, 1])
    results = {"retrain": {"mia_svc_efficacy": 0.2}, "unlearned": {"mia_svc_efficacy": 0.6}}
    ctx = eval_ctx(retrain=oracle, unlearned=model, results=results)
    # gaps: FA 0.75 vs 0.25 -> 0.5; RA 1 vs 0.75 -> 0.25; TA 0.5 vs 0.5 -> 0; MIA 0.4
    assert evaluate("tow", model, ctx)["tow"] == pytest.approx(0.75 * 0.5 * 1.0)
    assert evaluate("tow_mia", model, ctx)["tow_mia"] == pytest.approx(0.75 * 0.6 * 1.0)
    gaps = evaluate("avg_gap", model, ctx)
    assert gaps["mia_svc_efficacy_gap"] == pytest.approx(0.4)
    assert gaps["avg_gap"] == pytest.approx((0.5 + 0.25 + 0 + 0.4) / 4)
    assert evaluate("oracle_gap", model, ctx)["acc_avg_gap"] == pytest.approx(0.75 / 3)
    assert evaluate("tow", oracle, ctx)["tow"] == 1.0
    assert evaluate("tow_mia", oracle, eval_ctx(retrain=oracle, results=results))["tow_mia"] == 1.0


def test_metrics_that_read_others_must_come_after_them():
    with pytest.raises(ConfigError, match="eval.evaluators"):
        build_evaluators(["avg_gap", "mia_svc"])
    with pytest.raises(ConfigError, match="eval.evaluators"):
        build_evaluators(["tow_mia"])
    assert len(build_evaluators(["mia_svc", "avg_gap", "tow_mia"])) == 3


# ---------------------------------------------------------------- Zuo et al. rates
def test_zuo_rates_from_known_correctness():
    original = from_correct("original", forget=[1, 1, 1, 0], retain=[1, 1, 0, 1, 1])
    model = from_correct("unlearned", forget=[0, 1, 0, 1], retain=[1, 0, 1, 1, 1])
    ctx = eval_ctx(original=original, unlearned=model)
    got = evaluate("zuo_rates", model, ctx)
    assert got["forgetting_rate"] == pytest.approx((0.75 - 0.5) / 0.75)
    assert got["memory_retention_rate"] == pytest.approx(0.8 / 0.8)
    assert got["forget_flip_rate"] == pytest.approx(2 / 3)  # θ_o right on 0,1,2; θ_u wrong on 0,2
    assert got["retain_keep_rate"] == pytest.approx(3 / 4)  # θ_o right on 0,1,3,4; θ_u keeps 0,3,4
    own = evaluate("zuo_rates", original, ctx)
    assert own == {"forgetting_rate": 0.0, "memory_retention_rate": 1.0,
                   "forget_flip_rate": 0.0, "retain_keep_rate": 1.0}


# ---------------------------------------------------------------- LR MIA (∇τ / kit)
def test_lr_mia_separable_losses_score_one_and_identical_ones_chance():
    rng = np.random.default_rng(0)
    assert lr_mia_accuracy(rng.uniform(0, 0.1, 60), rng.uniform(5, 6, 200), seed=0) == 1.0
    same = rng.uniform(0, 1, 400)
    assert abs(lr_mia_accuracy(same[:200], same[200:], seed=0) - 0.5) < 0.1
    assert math.isnan(lr_mia_accuracy(np.array([0.1, 0.2]), np.array([1.0, 2.0]), seed=0))


def test_mia_lr_evaluator_on_separable_loss_and_entropy():
    forget = loss_logits(np.linspace(0.001, 0.01, 40))  # confident and right: low loss, low entropy
    test = conf_logits(np.linspace(0.45, 0.55, 50))  # near-uniform: high loss, high entropy
    model = scored("unlearned", forget=forget, test=test)
    got = evaluate("mia_lr", model, eval_ctx())
    assert got == {"mia_loss_lr_acc": 1.0, "mia_entropy_lr_acc": 1.0}
    with pytest.raises(ConfigError, match="eval.params.mia_lr.test_size"):
        build_evaluators(["mia_lr"], {"mia_lr": {"test_size": 1.5}})


# ---------------------------------------------------------------- SVC MIA-Efficacy (SalUn)
def test_svc_efficacy_on_separable_confidences():
    members, nonmembers = np.linspace(0.95, 1.0, 30), np.linspace(0.2, 0.4, 30)
    assert svc_efficacy(members, nonmembers, np.array([0.99, 0.97, 0.96, 0.3])) == 0.25


def test_mia_svc_evaluator_counts_forget_examples_predicted_nonmember():
    model = scored("unlearned", retain=conf_logits(np.linspace(0.95, 0.999, 80)),
                   test=conf_logits(np.linspace(0.1, 0.4, 20)),
                   forget=conf_logits([0.99, 0.98, 0.3, 0.2, 0.15]))
    assert evaluate("mia_svc", model, eval_ctx())["mia_svc_efficacy"] == pytest.approx(3 / 5)
    assert evaluate("mia_svc", model, eval_ctx(), max_examples=5)["mia_svc_efficacy"] == pytest.approx(3 / 5)
    with pytest.raises(ConfigError, match="eval.params.mia_svc.max_examples"):
        build_evaluators(["mia_svc"], {"mia_svc": {"max_examples": 1}})


# ---------------------------------------------------------------- efficiency
def test_precompute_seconds_come_from_the_run_timings():
    model = from_correct("unlearned", forget=[1])
    ctx = eval_ctx(timings={"original": None, "retrain": 10.0, "unlearned": 4.0})
    ctx.run.timings["precompute_s"] = 1.5
    assert evaluate("efficiency", model, ctx) == {"rte_s": 4.0, "speedup_vs_retrain": 2.5, "precompute_s": 1.5}
    oracle = from_correct("retrain", forget=[1])
    assert evaluate("efficiency", oracle, ctx)["precompute_s"] == 0.0
    assert evaluate("efficiency", from_correct("original", forget=[1]), ctx) == {}


# ---------------------------------------------------------------- presets, end to end
def test_full_preset_lists_every_registered_evaluator(run_cfg):
    listed = set(run_cfg(["eval=full"]).eval.evaluators)
    missing = sorted(set(EVALUATORS.names()) - listed)
    assert not missing, f"add {', '.join(missing)} to conf/eval/full.yaml (every evaluator runs in eval=full)"


@pytest.mark.parametrize("preset", EVAL_PRESETS)
def test_every_eval_preset_runs(run_pipeline, run_cfg, preset):
    # lightweight reports its epochs/steps: method.* rows appear beside the evaluators' metrics
    frame = run_pipeline([f"eval={preset}", "method=lightweight"])
    declared = set()  # the preset's evaluators plus the objective's (val_gap), as planned
    for ev in plan(run_cfg([f"eval={preset}"])).evaluators:
        declared |= set(ev.metrics)
    unlearned = set(frame[frame.role == "unlearned"].metric)
    assert unlearned - {"method.steps", "method.epochs", "method.stopped_early"} == declared
    assert set(frame.role) == {"original", "retrain", "unlearned"}
    assert frame.value.notna().all()
    if "tow" in declared:
        assert metric(frame, "tow", "retrain") == 1.0
    if "forgetting_rate" in declared:
        assert metric(frame, "forgetting_rate", "original") == 0.0
        assert metric(frame, "memory_retention_rate", "original") == 1.0
    if "avg_gap" in declared:
        assert metric(frame, "avg_gap", "retrain") == 0.0


def test_retrain_method_matches_the_oracle_on_every_metric(run_pipeline):
    frame = run_pipeline(["eval=full", "method=retrain"])
    for name in ("tow", "tow_mia"):
        assert metric(frame, name) == 1.0
    for name in ("avg_gap", "mia_svc_efficacy_gap"):
        assert metric(frame, name) == 0.0
    for name in ("mia_svc_efficacy", "mia_loss_lr_acc", "forgetting_rate", "retain_keep_rate"):
        assert metric(frame, name) == metric(frame, name, "retrain")


# ../shared/data beside the checkout (as in CI), or wherever UNLEARNBENCH_DATA points.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FASHION = Path(os.environ.get("UNLEARNBENCH_DATA", _SHARED)) / "FashionMNIST" / "raw"


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="needs Fashion-MNIST (set UNLEARNBENCH_DATA)")
def test_oracle_looks_unseen_and_original_overfits(run_pipeline):
    """On a random forget set the oracle never saw D_f, so loss-MIA is at chance; the
    original, trained to near-zero loss on 3.6k examples without weight decay, is not."""
    frame = run_pipeline([f"data_root={FASHION.parents[1]}", "dataset=fashion_mnist",
                          "dataset.limit_train=4000", "dataset.limit_test=null",
                          "train.max_batches=null", "train.epochs=40", "train.weight_decay=0",
                          "method=original",
                          "eval=full"])
    oracle_auc, original_auc = metric(frame, "mia_loss_auc", "retrain"), metric(frame, "mia_loss_auc", "original")
    assert abs(oracle_auc - 0.5) < 0.05
    assert original_auc > oracle_auc + 0.05, (original_auc, oracle_auc)
    assert metric(frame, "mia_loss_lr_acc", "original") > metric(frame, "mia_loss_lr_acc", "retrain")
    assert metric(frame, "mia_svc_efficacy", "original") < metric(frame, "mia_svc_efficacy", "retrain")
    assert metric(frame, "forgetting_rate", "original") == 0.0
    assert metric(frame, "tow", "retrain") == 1.0
