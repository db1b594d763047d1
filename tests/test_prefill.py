"""unlearnbench-prefill: a sweep's originals and oracles, trained as banks, under the runs' own keys."""

import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import models_in
from unlearnbench.cache import ModelCache
from unlearnbench.prefill import expand, main, prefill

ROOT = Path(__file__).resolve().parents[1]


def _common(tmp_path):
    return ["debug=smoke", "device=cpu", f"output_root={tmp_path}"]


def test_expand_matches_hydra_multirun():
    combos = expand(["seed=range(2)", "method=finetune,retrain", "debug=smoke"])
    assert len(combos) == 4
    assert ["seed=1", "method=retrain", "debug=smoke"] in combos


def test_prefilled_sweep_finds_every_original_and_oracle(tmp_path):
    import unlearnbench

    report = main(["seed=range(3)", *_common(tmp_path)])
    assert (report.banked, report.sequential, report.cached, report.banks) == (6, 0, 0, [6])
    entries = list(ModelCache(tmp_path / "cache").entries())
    assert len(entries) == 6 and all(e.meta["trained_by"] == "bank" and e.meta["bank_size"] == 6
                                     for e in entries)
    for seed in range(3):
        frame = unlearnbench.run([f"seed={seed}", *_common(tmp_path)]).metrics
        assert frame.original_cache_hit.all() and frame.oracle_cache_hit.all(), seed
    assert len(models_in(ModelCache(tmp_path / "cache"))) == 6  # the runs trained nothing
    again = prefill(["seed=range(3)", "method=finetune,retrain", *_common(tmp_path)])
    assert (again.cached, again.banked) == (6, 0)  # methods share each seed's models


def test_bank_members_match_the_models_a_run_trains(tmp_path):
    import unlearnbench

    # One full epoch (no step cap) on digits' 540 smoke examples: 5 steps of 128.
    sweep = ["seed=range(2)", "train.epochs=1", "train.max_batches=null", *_common(tmp_path)]
    prefill([*sweep, f"cache_dir={tmp_path / 'banked'}"])
    for seed in range(2):
        unlearnbench.run([f"seed={seed}", *sweep[1:], f"cache_dir={tmp_path / 'solo'}"])
    banked, solo = ModelCache(tmp_path / "banked"), ModelCache(tmp_path / "solo")
    pairs = [(e, solo.load(e.stage, e.key, "cpu")) for e in banked.entries()]
    assert len(pairs) == 4 and all(found is not None for _, found in pairs)  # same keys
    for entry, (state, meta) in pairs:
        assert meta["trained_by"] == "fit"
        torch.testing.assert_close(banked.load(entry.stage, entry.key, "cpu")[0], state, rtol=1e-4, atol=1e-5)


def test_models_the_bank_cannot_batch_train_one_after_another(tmp_path, caplog):
    import unlearnbench

    caplog.set_level(logging.INFO, logger="unlearnbench")
    report = prefill(["seed=range(2)", "model.dropout=0.2", *_common(tmp_path)])
    assert (report.banked, report.sequential) == (0, 4)
    assert "dropout draws would differ from a single run's, so its 4 model(s) train one after another" \
        in caplog.text
    frame = unlearnbench.run(["seed=1", "model.dropout=0.2", *_common(tmp_path)]).metrics
    assert frame.original_cache_hit.all() and frame.oracle_cache_hit.all()


def test_dry_run_trains_nothing(tmp_path):
    report = prefill(["seed=0,1", *_common(tmp_path)], dry_run=True)
    assert report.banked == 4
    assert not list(ModelCache(tmp_path / "cache").entries())


@pytest.mark.slow
def test_cli_sweep_after_the_cli_prefill_hits_the_cache(tmp_path):
    """The installed-style commands: prefill, then `unlearnbench -m` over the same overrides."""
    env_py = [sys.executable, "-m"]
    args = ["seed=0,1,2", "method=finetune,retrain", *_common(tmp_path)]
    subprocess.run([*env_py, "unlearnbench.prefill", *args], check=True, cwd=ROOT, capture_output=True)
    subprocess.run([*env_py, "unlearnbench", "-m", *args], check=True, cwd=ROOT, capture_output=True)
    frames = [pd.read_csv(f) for f in (tmp_path / "runs").rglob("metrics.csv")]
    assert len(frames) == 6
    assert all(f.original_cache_hit.all() and f.oracle_cache_hit.all() for f in frames)
