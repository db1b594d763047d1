"""Memorization scores (heldout bank, learning events) and forget=memorized."""

import numpy as np
import pytest
import torch

from unlearnbench.cache import ModelCache
from unlearnbench.data.bundle import DataBundle, Split
from unlearnbench.data.forget.memorized import MemorizedForget, _shares
from unlearnbench.errors import ConfigError
from unlearnbench.memorization import (
    _heldout_summary,
    _learning_event_summary,
    paired_halves,
    true_class_margin,
)


def test_paired_halves_put_every_example_in_exactly_half_the_models():
    masks = paired_halves(11, 6, torch.Generator().manual_seed(0))
    assert masks.shape == (6, 11)
    assert masks.sum(0).tolist() == [3] * 11
    assert torch.equal(masks[0], ~masks[1])
    with pytest.raises(ValueError, match="even"):
        paired_halves(11, 5, torch.Generator())


def test_heldout_score_is_in_minus_out_accuracy_by_hand():
    # 4 models, 3 examples. Example 0: right only when in (score 1); 1: always right (0);
    # 2: right in 1 of 2 "in" models and in both "out" models (0.5 - 1 = -0.5).
    inside = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 0, 0]], bool)
    correct = np.array([[1, 1, 1], [1, 1, 1], [0, 1, 0], [0, 1, 1]], bool)
    s = _heldout_summary({"in_mask": inside, "correct": correct})
    np.testing.assert_allclose(s["score"], [1.0, 0.0, -0.5])
    np.testing.assert_allclose(s["in_acc"], [1.0, 1.0, 0.5])
    np.testing.assert_allclose(s["out_acc"], [0.0, 1.0, 1.0])


def test_learning_events_by_hand():
    # epochs x examples: learned at once; learned at epoch 2; forgotten once and relearned; never
    correct = np.array([[1, 0, 1, 0], [1, 0, 0, 0], [1, 1, 1, 0]], bool)
    prob = np.array([[0.9, 0.1, 0.6, 0.0], [0.9, 0.3, 0.2, 0.1], [0.9, 0.8, 0.7, 0.2]], np.float32)
    s = _learning_event_summary({"correct": correct, "true_prob": prob})
    assert s["first_learned_epoch"].tolist() == [0, 2, 2, 3]
    assert s["forgetting_events"].tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(s["score"], [0.1, 1 - 0.4, 1 - 0.5, 1 - 0.1], rtol=1e-6)


def test_true_class_margin():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    assert true_class_margin(logits, torch.tensor([0, 2])).tolist() == [1.0, -2.0]


def test_shares_are_proportional_and_sum_to_k():
    assert _shares(10, [50, 30, 20]) == [5, 3, 2]
    assert sum(_shares(7, [5, 5, 5])) == 7


class _FakeScores:
    def __init__(self, score):
        self.score = np.asarray(score, dtype=float)

    def arrays(self, data, proxy, k_models):
        return {"score": self.score}


def _bundle(y):
    y = torch.as_tensor(y)
    split = Split(torch.zeros(len(y), 1, 1, 1), y)
    return DataBundle("fake", split, split, split, int(y.max()) + 1, torch.zeros(1), torch.ones(1))


def test_bands_draw_from_their_third_and_top_takes_the_highest():
    data, score = _bundle([0] * 30), np.arange(30.0)  # example i scores i
    for band, pool in [("high", range(20, 30)), ("mid", range(10, 20)), ("low", range(0, 10))]:
        spec = MemorizedForget(band=band, fraction=None, count=5)
        got = spec.select(data, 0, scores=_FakeScores(score)).forget_idx
        assert set(got.tolist()) <= set(pool), band
    top = MemorizedForget(band="top", fraction=None, count=4).select(data, 3, scores=_FakeScores(score))
    assert top.forget_idx.tolist() == [26, 27, 28, 29]
    assert top.scores["score"].shape == (30,)


def test_class_balanced_keeps_the_class_mix():
    y = np.array([0] * 40 + [1] * 20)
    score = np.where(y == 1, 10.0, 0.0) + np.arange(60) / 100  # class 1 dominates the ranking
    data = _bundle(y)
    plain = MemorizedForget(band="top", fraction=None, count=12).select(data, 0, scores=_FakeScores(score))
    assert set(y[plain.forget_idx.numpy()]) == {1}
    balanced = MemorizedForget(band="top", fraction=None, count=12, class_balanced=True).select(
        data, 0, scores=_FakeScores(score))
    assert np.bincount(y[balanced.forget_idx.numpy()]).tolist() == [8, 4]
    assert set(balanced.forget_idx.tolist()) == set(range(32, 40)) | set(range(56, 60))


def test_bad_settings_name_their_key():
    with pytest.raises(ConfigError, match="forget.band"):
        MemorizedForget(band="hot")
    with pytest.raises(ConfigError, match="forget.proxy"):
        MemorizedForget(proxy="loss")
    with pytest.raises(ConfigError, match="forget.k_models"):
        MemorizedForget(k_models=7)
    with pytest.raises(ConfigError, match="forget.fraction"):  # 20 from a band of 10
        MemorizedForget(band="high", fraction=None, count=20).select(_bundle([0] * 30), 0,
                                                                    scores=_FakeScores(np.arange(30.0)))
    with pytest.raises(ValueError, match="select_forget"):
        MemorizedForget().select(_bundle([0] * 30), 0)


def test_heldout_forget_set_in_a_run_is_cached_and_shared_by_seeds(run_pipeline, tmp_path):
    a = run_pipeline(["forget=memorized", "forget.k_models=4"], name="a")
    b = run_pipeline(["forget=memorized", "forget.k_models=4", "seed=1"], name="b")
    assert a.forget.iloc[0] == "memorized(band=high,class_balanced=False,fraction=0.1,k_models=4,proxy=heldout)"
    entries = list(ModelCache(tmp_path / "cache").entries("memorization"))
    assert len(entries) == 1 and entries[0].meta["trained_by"] == "bank"  # seed 1 reused seed 0's bank
    saved = np.load(tmp_path / "a" / "memorization.npz")
    assert saved["in_mask"].shape == saved["correct"].shape == saved["margin"].shape == (4, 540)
    assert str(saved["proxy"]) == "heldout"
    forget = np.load(tmp_path / "a" / "forget_indices.npy")
    assert len(forget) == a.forget_size.iloc[0] == 54
    high = saved["score"] >= np.sort(saved["score"])[-180]  # the high third and its ties
    assert high[forget].all()
    assert not np.array_equal(forget, np.load(tmp_path / "b" / "forget_indices.npy"))  # drawn per seed


def test_learning_events_train_the_very_original_the_run_uses(run_pipeline, tmp_path):
    memorized = run_pipeline(["forget=memorized", "forget.proxy=learning_events"], name="m")
    plain = run_pipeline(["forget=random", f"cache_dir={tmp_path / 'other'}"], name="r")
    assert memorized.original_cache_hit.iloc[0]  # select() trained and stored it
    assert memorized.original_cache_key.iloc[0] == plain.original_cache_key.iloc[0]
    orig = lambda f: f[(f.role == "original") & (f.metric == "test_loss")].value.iloc[0]  # noqa: E731
    assert orig(memorized) == orig(plain)
    saved = np.load(tmp_path / "m" / "memorization.npz")
    assert saved["true_prob"].shape == saved["correct"].shape == (2, 540)  # debug=smoke: 2 epochs


@pytest.mark.slow
@pytest.mark.parametrize("proxy", ["heldout", "learning_events"])
def test_memorized_forget_set_runs_with_every_method(run_pipeline, tmp_path, proxy):
    from test_registry import method_overrides

    from unlearnbench.registry import METHODS

    for name in METHODS.names():
        frame = run_pipeline(["forget=memorized", f"forget.proxy={proxy}", "forget.k_models=4",
                              f"method={name}", *method_overrides(name, tmp_path)], name=name)
        assert frame.value.notna().all(), name
