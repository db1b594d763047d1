"""Reference rows (the original's and the oracle's metrics) computed once and reused."""

import pandas as pd
import pytest
import torch

from unlearnbench.cache import ModelCache
from unlearnbench.evaluators import build_evaluators
from unlearnbench.references import STAGE, ReferenceRows, reference_material, weights_sha

# Every evaluator but spd (its GAN is slow here; same contract), with dropout so that
# relearning draws random numbers: the cached path must not shift them.
EVALS = ("eval.evaluators=[accuracy,loss,oracle_gap,mia_loss,mia_svc,mia_lr,avg_gap,tow,tow_mia,"
         "zuo_rates,js_to_oracle,zrf,relearn_epochs,efficiency,val_gap]")
TIMING = ("rte_s", "speedup_vs_retrain", "precompute_s")


def _values(frame: pd.DataFrame) -> pd.Series:
    frame = frame[~frame.metric.isin(TIMING)]
    return frame.set_index(["role", "metric"]).value.sort_index()


def test_reused_rows_are_bit_identical_to_computed_ones(run_pipeline, tmp_path, one_thread):
    shared = [EVALS, "model.dropout=0.3", f"cache_dir={tmp_path / 'shared'}"]
    first = run_pipeline([*shared, "method=finetune"], "finetune")
    reused = run_pipeline([*shared, "method=gradient_ascent"], "ga_reused")
    fresh = run_pipeline([EVALS, "model.dropout=0.3", f"cache_dir={tmp_path / 'fresh'}",
                          "method=gradient_ascent"], "ga_fresh")
    assert not first.reference_cache_hit.iloc[0] and not fresh.reference_cache_hit.iloc[0]
    assert reused.reference_cache_hit.iloc[0]
    pd.testing.assert_series_equal(_values(reused), _values(fresh))  # every role, exact
    refs = list(ModelCache(tmp_path / "shared").entries(STAGE))
    assert len(refs) == 2  # one per reference role, listed (and cleared) like model entries
    from unlearnbench.cache_cli import _describe

    assert sorted(_describe(e).split(" metrics")[0] for e in refs) == ["original", "retrain"]
    assert all("of 14 evaluators seed=0" in _describe(e) for e in refs)  # the listed ones but efficiency


def test_efficiency_is_never_reused(run_pipeline, tmp_path, one_thread):
    shared = ["eval.evaluators=[accuracy,efficiency]", f"cache_dir={tmp_path / 'c'}"]
    first = run_pipeline([*shared, "method=finetune"], "a")
    entry = next(ModelCache(tmp_path / "c").entries(STAGE))
    assert "accuracy" in entry.meta["metrics"] and "efficiency" not in entry.meta["metrics"]
    second = run_pipeline([*shared, "method=finetune", "seed=0", "overwrite=true"], "a")
    assert second.reference_cache_hit.iloc[0]
    timed = lambda f: f[f.metric == "rte_s"].set_index("role").value
    assert set(timed(second).index) == set(timed(first).index) == {"retrain", "unlearned"}


def _material(evaluators, models, seed=0, forget=(1, 2, 3)):
    return reference_material(evaluators, models, "data", torch.tensor(forget), seed, {"lr": 0.1},
                              torch.device("cpu"))


def test_key_changes_with_every_input():
    torch.manual_seed(0)
    models = {"original": torch.nn.Linear(3, 2), "retrain": torch.nn.Linear(3, 2)}
    evs = build_evaluators(["accuracy", "relearn_epochs"])
    base = ReferenceRows(None, _material(evs, models)).key("original")
    assert ReferenceRows(None, _material(evs, models)).key("retrain") != base
    assert ReferenceRows(None, _material(evs, models, seed=1)).key("original") != base
    assert ReferenceRows(None, _material(evs, models, forget=(1, 2, 4))).key("original") != base
    other = build_evaluators(["accuracy", "relearn_epochs"], {"relearn_epochs": {"max_epochs": 3}})
    assert ReferenceRows(None, _material(other, models)).key("original") != base
    with torch.no_grad():
        models["retrain"].bias[0] += 1e-6  # a retrained oracle never meets the old one's numbers
    assert ReferenceRows(None, _material(evs, models)).key("original") != base


def test_weights_sha_sees_bytes_dtype_and_names():
    a = torch.nn.Linear(2, 2)
    b = torch.nn.Linear(2, 2)
    b.load_state_dict(a.state_dict())
    assert weights_sha(a) == weights_sha(b)
    assert weights_sha(a) != weights_sha(a.double())
    with torch.no_grad():
        b.weight[0, 0] = torch.nextafter(b.weight[0, 0], torch.tensor(2.0))
    assert weights_sha(a) != weights_sha(b)


def test_without_a_cache_everything_is_computed():
    rows = ReferenceRows(None, {"x": 1})
    assert rows.load("original") == {} and not rows.all_hit
    rows.save("original", {"accuracy": {"forget_acc": 1.0}})  # no cache: nothing stored, no error


def test_relearning_with_dropout_neither_reads_nor_moves_the_global_rng():
    """A role served from the reference cache is not evaluated, so the global RNG reaches the
    next role in another state: relearning must not depend on it (or change it)."""
    from unlearnbench.data.bundle import Split
    from unlearnbench.engine import Recipe, RunContext
    from unlearnbench.evaluators.relearn import relearn_curve

    gen = torch.Generator().manual_seed(0)
    forget = Split(torch.randn(64, 8, generator=gen), torch.randint(0, 3, (64,), generator=gen))
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                torch.nn.Linear(32, 3))
    ctx = RunContext(device=torch.device("cpu"), seed=0, recipe=Recipe(batch_size=16), show_progress=False)
    curves = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        curves.append(relearn_curve(model, forget, 2.0, 3, 0.05, None, ctx))  # target never reached
        assert torch.equal(torch.get_rng_state(), state)
    assert curves[0] == curves[1] and len(curves[0]) == 4
