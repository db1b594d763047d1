"""unlearnbench-audit: statistics on hand-computed cases, and the command on synthetic run dirs."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from unlearnbench.evaluators.scores import margins_and_losses, retain_sample
from unlearnbench.reports import audit_stats as st
from unlearnbench.reports.audit import ALTERNATIVE, NULL, Options, audit, main
from unlearnbench.reports.audit_load import find_runs


# ----------------------------------------------------------------------------- statistics

def test_margin_is_logit_scaled_confidence_and_loss_is_cross_entropy():
    import torch

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 2])
    margin, loss = margins_and_losses(logits, labels)
    p = torch.softmax(logits.double(), 1)[[0, 1], [0, 2]].numpy()
    assert margin == pytest.approx(np.log(p / (1 - p)))
    assert loss == pytest.approx(-np.log(p))


def test_retain_sample_depends_on_the_forget_set_only():
    forget, retain = np.array([3, 7, 9]), np.setdiff1d(np.arange(100), [3, 7, 9])
    a = retain_sample(forget, retain)
    assert len(a) == 3 and np.array_equal(a, retain_sample(forget, retain))
    assert not np.array_equal(a, retain_sample(np.array([3, 7, 10]), retain))


def test_per_example_auc_and_tpr_by_hand():
    pos = np.array([[3.0, 1.0], [1.0, 1.0]])
    neg = np.array([[2.0, 1.0], [0.0, 1.0]])
    # example 0: pairs (3>2, 3>0, 1<2, 1>0) = 3/4; example 1: all ties = 1/2
    assert st.per_example_auc(pos, neg) == pytest.approx([0.75, 0.5])
    # one negative of four may pass at 25 % FPR: threshold 2 -> positives above it: 1 of 4
    assert st.tpr_at_fpr(pos.ravel(), neg.ravel(), 0.25) == pytest.approx(0.25)


def test_ulira_scores_identical_populations_are_zero_and_auc_is_half():
    a = np.random.default_rng(0).normal(size=(8, 30))
    sa, sb = st.ulira_scores(a, a, folds=4)
    assert np.all(sa == 0) and np.all(sb == 0)
    assert np.all(st.ulira_auc(sa, sb, 4) == 0.5)


def test_crossed_bootstrap_sees_the_spread_between_units():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(8, 1)) + 0.01 * rng.normal(size=(8, 500))  # units differ, examples barely
    crossed = st.crossed_bootstrap_means(values, 500)
    examples_only = values.mean(0)[st.bootstrap_indices(500, 500)].mean(1)
    assert crossed.std() > 20 * examples_only.std()
    assert crossed.mean() == pytest.approx(values.mean(), abs=3 * crossed.std())


@pytest.mark.parametrize("shift, low, high", [(0.0, 0.45, 0.55), (3.0, 0.95, 1.0)])
def test_ulira_cross_fitted_null_reads_half_and_a_shift_reads_one(shift, low, high):
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(1, 400)) * 3  # examples differ; models scatter around them
    a = centres + shift + rng.normal(size=(8, 400))
    b = centres + rng.normal(size=(8, 400))
    for folds in (2, 4, 8):
        auc = st.ulira_auc(*st.ulira_scores(a, b, folds), folds).mean(0).mean()
        assert low <= auc <= high, folds


def test_epsilon_by_hand():
    retrained = np.array([[1.0], [3.0], [5.0], [7.0]])  # larger median: the positive class
    unlearned = np.array([[0.0], [2.0], [4.0], [6.0]])
    # best rules: threshold 3 (FNR 1/4, FPR 1/2) or 5; interval [2, 4] (FNR 1/2, FPR 1/4)
    expected = math.log((1 - st.DELTA - 0.5) / 0.25)
    assert st.per_example_epsilon(unlearned, retrained) == pytest.approx([expected])
    separated = st.per_example_epsilon(unlearned - 10, retrained)
    assert separated == pytest.approx([st.EPSILON_CAP])  # FPR = FNR = 0: ε = ∞, capped
    peaky = st.per_example_epsilon(np.full((4, 1), 2.0) + [[0], [0], [0], [1e-4]], retrained)
    assert peaky == pytest.approx([st.EPSILON_CAP])      # range ratio < 1 %: the cap


def test_epsilon_points_buckets():
    # 8 models: buckets of 0.5 up to ceil(log 7) = 2 earn 1, 1/2, 1/4, 1/8; beyond, 0
    eps = np.array([0.1, 0.7, 1.2, 1.9, 2.0, np.nan])
    assert st.epsilon_points(eps, 8) == pytest.approx([1, 0.5, 0.25, 0.125, 0, 0])


def test_klom_by_hand():
    p = np.array([[0.0], [0.0], [1.0], [1.0]])
    q = np.array([[0.0], [0.0], [0.0], [1.0]])
    # 20 bins over [0, 1]: p = (1/2, 1/2), q = (3/4, 1/4) on the end bins
    assert st.klom(p, q) == pytest.approx([0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2)])
    assert st.klom(p, p) == pytest.approx([0.0])
    q_missing = np.zeros((4, 1))  # q has no mass where p's upper half sits: floored at 1e-5
    qs = np.array([1.0, 1e-5]) / (1 + 1e-5)
    assert st.klom(p, q_missing) == pytest.approx([0.5 * math.log(0.5 / qs[0]) + 0.5 * math.log(0.5 / qs[1])])


def test_permutation_null_by_hand():
    """fn = the first group's value: over re-partitions of {0, 1} it is 0 or 1 half the time."""
    a, b = np.zeros((1, 3)), np.ones((1, 3))
    null = st.permutation_null(lambda x, y: x[0], a, b, rounds=4000, seed=1)
    assert null == pytest.approx([0.5] * 3, abs=0.03)
    again = st.permutation_null(lambda x, y: x[0], a, b, rounds=4000, seed=1)
    assert np.array_equal(null, again)  # seeded


def test_calibrated_klom_and_epsilon_put_exchangeable_populations_at_their_ideal():
    """8 + 8 draws of one population: raw binned KL and ε sit far from their ideal (the
    finite-population floor); the permutation-calibrated forms read ≈ 0 and ≈ 1, while a
    shifted population stays clearly away from them."""
    rng = np.random.default_rng(0)
    centre = rng.normal(size=(1, 400)) * 3
    a, b = centre + rng.normal(size=(8, 400)), centre + rng.normal(size=(8, 400))
    raw = st.klom(a, b)
    excess = raw - st.permutation_null(st.klom, a, b, rounds=30)
    assert raw.mean() > 1.0 and abs(excess.mean()) < 0.1 * raw.mean()
    shifted = b + 4.0  # 4 σ: the ε bound needs a clear shift with 8 models a side
    assert (st.klom(a, shifted) - st.permutation_null(st.klom, a, shifted, rounds=30)).mean() > 1.0
    points = lambda x, y: st.epsilon_points(st.per_example_epsilon(x, y), 8)
    assert points(a, b).mean() < 0.5  # raw ε forget score far below its maximum of 1
    assert points(a, b).mean() / st.permutation_null(points, a, b, rounds=30).mean() == pytest.approx(1, abs=0.1)
    assert points(a, shifted).mean() / st.permutation_null(points, a, shifted, rounds=30).mean() < 0.5


# ----------------------------------------------------------------------------- the command

def _fake_run(root, method, seed, forget_seed=0, epochs=60, k_examples=60):
    """A finished run dir as the pipeline writes it: config, metrics.csv, scores.npz.

    Oracles: margins around per-example centres; originals: forget margins shifted up by 4
    (memorised); 'retrain' unlearns to the oracle itself, 'noisy' to the original."""
    rng = np.random.default_rng(seed)  # the oracle and original of a seed: shared by methods
    centre = np.random.default_rng(7).normal(size=(3, k_examples)) * 2
    oracle = centre + rng.normal(size=centre.shape)
    original = oracle + np.array([[4.0], [0.5], [0.0]])
    unlearned = {"retrain": oracle, "noisy": original}[method]
    folder = root / method / f"seed{seed}"
    (folder / ".hydra").mkdir(parents=True)
    cfg = {"seed": seed, "method": {"name": method}, "train": {"epochs": epochs},
           "forget": {"name": "random", "seed": forget_seed}, "output_root": str(root)}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    arrays = {"index.forget": np.arange(k_examples) + 100 * forget_seed,
              "index.retain": np.arange(k_examples) + 1000, "index.test": np.arange(k_examples)}
    rows = []
    for role, m in (("original", original), ("retrain", oracle), ("unlearned", unlearned)):
        for i, split in enumerate(("forget", "retain", "test")):
            arrays[f"margin.{role}.{split}"] = m[i].astype(np.float32)
        for name, value in (("retain_acc", 0.9), ("test_acc", 0.8),
                            ("mia_loss_auc", 0.5 + 0.01 * float(m[0].mean() - oracle[0].mean()))):
            rows.append({"experiment": "", "dataset": "fashion_mnist", "model": "mlp", "forget": "random",
                         "forget_size": k_examples, "method": method, "seed": seed, "role": role,
                         "metric": name, "value": value, "higher_is_better": ""})
    np.savez(folder / "scores.npz", **arrays)
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)


def _population(root, seeds=range(8), **kw):
    for method in ("retrain", "noisy"):
        for s in seeds:
            _fake_run(root, method, s, **kw)


def test_audit_calibration_rows_and_retrain_equals_the_null(tmp_path):
    _population(tmp_path)
    rows = {r.label: r for r in audit(find_runs([str(tmp_path)]), opts=Options(rounds=200))}
    null, alt = rows[NULL], rows[ALTERNATIVE]
    lo, hi = null.stats["ulira_auc"][1:]
    assert lo <= 0.5 <= hi
    assert alt.stats["ulira_auc"][1] > hi and "U-LiRA" in alt.per_example_verdict
    retrain = rows["retrain"].stats                     # retrain's unlearned models are its oracles
    assert retrain.pop("mia_loss_auc_delta") == (0.0, 0.0, 0.0) and retrain == null.stats
    assert "U-LiRA" in rows["noisy"].per_example_verdict
    assert rows["noisy"].stats["eps_forget_score"][0] < null.stats["eps_forget_score"][0]
    for name, ideal in (("eps_forget_score_calibrated", 1.0), ("klom_forget_excess", 0.0)):
        assert null.stats[name][1] <= ideal <= null.stats[name][2], name  # the calibrated null holds
    assert {"ε", "KLOM"} <= set(rows["noisy"].per_example_verdict)


def test_audit_cli_writes_table_csv_and_plot(tmp_path, capsys):
    _population(tmp_path / "runs")
    main([str(tmp_path / "runs"), "--csv", str(tmp_path / "a.csv"), "--plot", str(tmp_path / "a.png"),
          "--bootstrap", "200"])
    out = capsys.readouterr().out
    assert NULL in out and "U-LiRA AUC" in out and "ideal 0.5" in out
    frame = pd.read_csv(tmp_path / "a.csv")
    assert {"ulira_auc", "eps_score", "klom_test_p95"} <= set(frame.statistic)
    assert (tmp_path / "a.png").stat().st_size > 0
    main([str(tmp_path / "runs"), "--format", "latex", "--bootstrap", "50"])
    assert r"\begin{tabular}" in capsys.readouterr().out


def test_audit_refuses_too_few_seeds(tmp_path):
    _population(tmp_path, seeds=range(6))
    with pytest.raises(SystemExit, match="needs at least 8"):
        main([str(tmp_path)])
    main([str(tmp_path), "--min-seeds", "6", "--bootstrap", "20"])
    with pytest.raises(SystemExit, match="--folds must be in"):
        main([str(tmp_path), "--min-seeds", "6", "--folds", "4"])


def test_audit_refuses_runs_of_different_testbeds(tmp_path):
    _population(tmp_path)
    _fake_run(tmp_path / "other", "retrain", 0, epochs=10)
    with pytest.raises(SystemExit, match="train.epochs"):
        main([str(tmp_path)])


def test_audit_refuses_forget_sets_that_change_with_the_seed(tmp_path):
    for s in range(8):
        _fake_run(tmp_path, "retrain", s, forget_seed=s)
    with pytest.raises(SystemExit, match="forget.seed"):
        main([str(tmp_path)])


def test_audit_refuses_runs_without_scores(tmp_path):
    _population(tmp_path)
    (tmp_path / "noisy" / "seed0" / "scores.npz").unlink()
    with pytest.raises(SystemExit, match="no scores.npz"):
        main([str(tmp_path)])


def test_audit_module_stays_off_torch_and_the_pipeline():
    import subprocess
    import sys

    code = ("import sys, unlearnbench.reports.audit; "
            "assert 'torch' not in sys.modules and 'unlearnbench.pipeline' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-m", "unlearnbench.reports.audit", "--help"],
                         check=True, capture_output=True, text=True).stdout
    assert "--min-seeds" in out
