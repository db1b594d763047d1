"""Tuning: the objective the task returns, search spaces, tuned files and unlearnbench-tune."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from unlearnbench.config import compose
from unlearnbench.errors import ConfigError
from unlearnbench.plan import plan
from unlearnbench.registry import METHODS
from unlearnbench.tuning.space import check_space, read_space, search_file
from unlearnbench.tuning.tuned import expand_tuned, read_tuned

NOTHING_TO_TUNE = {"original", "retrain", "checkpoint"}  # no hyperparameters


def tuned_file(path: Path, method="gradient_ascent", params=None) -> Path:
    path.write_text(yaml.safe_dump({"method": method,
                                    "params": params or {"method.lr": 0.0123, "method.epochs": 4}}))
    return path


# ---------------------------------------------------------------- the objective
def test_objective_evaluator_is_added_when_the_eval_preset_lacks_it():
    names = [e.registry_name for e in plan(compose(["eval=del"])).evaluators]
    assert names[-1] == "val_gap" and names.count("val_gap") == 1
    names = [e.registry_name for e in plan(compose(["eval=del", "objective=avg_gap"])).evaluators]
    assert names.count("avg_gap") == 1  # del lists it already: nothing appended
    assert plan(compose(["objective=null"])).objective is None


def test_objective_brings_the_evaluators_it_reads():
    names = [e.registry_name for e in plan(compose(["objective=tow_mia"])).evaluators]
    assert names[-2:] == ["mia_svc", "tow_mia"]


def test_unknown_objective_names_the_key_and_the_closest_metric():
    with pytest.raises(ConfigError, match="objective.*Did you mean: val_avg_gap"):
        plan(compose(["objective=val_avg_gapp"]))


def test_the_run_returns_its_objective_from_metrics_csv(run_cfg):
    from unlearnbench.pipeline import run

    cfg = run_cfg(["method=gradient_ascent"])
    result = run(cfg)
    rows = result.metrics[(result.metrics.role == "unlearned") & (result.metrics.metric == "val_avg_gap")]
    assert result.objective == pytest.approx(float(rows.value.iloc[0]))
    assert str(rows.higher_is_better.iloc[0]).lower() == "false"
    again = run(cfg)  # a finished run: skipped, objective read back from its metrics.csv
    assert again.skipped and again.objective == result.objective


# ---------------------------------------------------------------- search spaces
@pytest.mark.parametrize("method", sorted(set(METHODS.names()) - NOTHING_TO_TUNE))
def test_every_method_has_a_search_space_over_its_own_keys(method):
    optuna = pytest.importorskip("optuna")
    from unlearnbench.tuning.space import distributions

    space = read_space(search_file(method))
    check_space(space, compose([f"method={method}"]), [])
    assert all(isinstance(d, optuna.distributions.BaseDistribution) for d in distributions(space).values())


def test_search_grammar_maps_to_optuna_distributions():
    pytest.importorskip("optuna")
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from unlearnbench.tuning.space import distribution

    assert distribution("method.lr", "tag(log, interval(1e-5, 0.1))") == FloatDistribution(1e-5, 0.1, log=True)
    assert distribution("method.lr", "interval(0.5, 0.9)") == FloatDistribution(0.5, 0.9)
    assert distribution("method.epochs", "int(interval(1, 5))") == IntDistribution(1, 5)
    assert distribution("method.epochs", "range(1, 6)") == IntDistribution(1, 5)  # stop excluded
    assert distribution("method.epochs", "range(1, 8, 3)") == IntDistribution(1, 7, step=3)
    assert distribution("method.localize", "choice(none, salun)") == CategoricalDistribution(["none", "salun"])
    with pytest.raises(ConfigError, match="method.lr.*not a search space"):
        distribution("method.lr", "0.1")


def test_search_space_keys_are_checked_against_the_config_and_overrides(tmp_path):
    cfg = compose(["method=gradient_ascent"])
    with pytest.raises(ConfigError, match="method.betta"):
        check_space({"method.betta": "interval(0, 1)"}, cfg, [])
    with pytest.raises(ConfigError, match="method.lr.*both searched and overridden"):
        check_space({"method.lr": "interval(0, 1)"}, cfg, ["method.lr=0.1"])
    with pytest.raises(ConfigError, match="nothing to tune"):
        read_space(search_file("retrain"))


# ---------------------------------------------------------------- +tuned=<file>
def test_tuned_file_parameters_enter_the_composed_config_and_user_overrides_win(tmp_path):
    f = tuned_file(tmp_path / "best.yaml")
    cfg = compose(["method=gradient_ascent", f"+tuned={f}"])
    assert (cfg.method.lr, cfg.method.epochs, cfg.tuned) == (0.0123, 4, str(f))
    cfg = compose(["method.lr=0.5", "method=gradient_ascent", f"+tuned={f}"])
    assert (cfg.method.lr, cfg.method.epochs) == (0.5, 4)
    assert expand_tuned(["seed=1"]) == ["seed=1"]


def test_tuned_file_for_another_method_or_malformed_is_a_config_error(tmp_path):
    f = tuned_file(tmp_path / "best.yaml", params={"method.lr": 0.1})
    with pytest.raises(ConfigError, match="tuned.*method 'gradient_ascent'.*method=finetune"):
        plan(compose(["method=finetune", f"+tuned={f}"]))
    with pytest.raises(ConfigError, match="tuned.*no tuned-parameter file"):
        read_tuned(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("params: {seed: 3}\nmethod: finetune\n")
    with pytest.raises(ConfigError, match="only method"):
        read_tuned(str(tmp_path / "bad.yaml"))
    with pytest.raises(ConfigError, match="one file"):
        expand_tuned([f"+tuned={f},{f}"])


def test_the_command_expands_tuned_before_hydra_composes(tmp_path):
    f = tuned_file(tmp_path / "best.yaml")
    done = subprocess.run([sys.executable, "-m", "unlearnbench", "method=gradient_ascent", f"+tuned={f}",
                           "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 0, done.stderr[-2000:]
    job = yaml.safe_load(done.stdout)
    assert (job["method"]["lr"], job["method"]["epochs"], job["tuned"]) == (0.0123, 4, str(f))


# ---------------------------------------------------------------- unlearnbench-tune
def tune_args(tmp_path, trials):
    return argparse.Namespace(
        overrides=["method=gradient_ascent", "debug=smoke", "device=cpu", f"output_root={tmp_path}"],
        trials=trials, search=None, out=None, storage=None, sampler_seed=0, startup_trials=5)


@pytest.mark.slow  # five digits runs: ≈15 s on an idle 2-core machine, ≈90 s when shared
def test_three_trials_write_best_yaml_and_a_rerun_resumes_the_study(tmp_path):
    optuna = pytest.importorskip("optuna")
    from unlearnbench.tuning.cli import tune

    best = tune(tune_args(tmp_path, 3))
    storage = f"sqlite:///{tmp_path / 'tune' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for t in trials:  # every trial is a normal run dir whose metrics.csv holds its value
        run_dir = Path(t.user_attrs["run_dir"])
        assert run_dir.parent.parent.name == "gradient_ascent" and (run_dir / ".hydra").is_dir()
        frame = pytest.importorskip("pandas").read_csv(run_dir / "metrics.csv")
        row = frame[(frame.role == "unlearned") & (frame.metric == "val_avg_gap")]
        assert float(row.value.iloc[0]) == pytest.approx(t.value)
    tuned = read_tuned(str(best))
    low = min(t.value for t in trials)
    assert tuned["value"] == low and tuned["params"] in [t.params for t in trials if t.value == low]
    assert tuned["complete_trials"] == 3 and tuned["direction"] == "minimize"
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.joinpath("runs").rglob("metrics.csv")}

    tune(tune_args(tmp_path, 3))  # nothing missing: no trial runs
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 3
    tune(tune_args(tmp_path, 4))  # one more trial; finished runs are not redone
    after = optuna.load_study(study_name=name, storage=storage).trials
    assert len(after) == 4 and after[-1].state.name == "COMPLETE"
    assert all(p.stat().st_mtime_ns == m for p, m in stamps.items())

    # The best parameters run on another seed through +tuned, as make tune-fashion does.
    tuned = read_tuned(str(best))
    cfg = compose(["method=gradient_ascent", f"+tuned={best}", "seed=1"])
    assert OmegaConf.to_container(cfg.method)["lr"] == tuned["params"]["method.lr"]


def test_a_diverging_trial_fails_and_tuning_goes_on(tmp_path):
    """lr 1e30 makes gradient ascent blow up (Diverged, nothing written); that trial is FAILED
    with the reason kept, it does not count, and the study still completes its budget."""
    optuna = pytest.importorskip("optuna")
    from unlearnbench.tuning.cli import tune

    space = tmp_path / "space.yaml"
    space.write_text("params:\n  method.lr: choice(1e30, 1e-4)\n")
    args = tune_args(tmp_path, 2)
    args.search, args.startup_trials = space, 10
    best = tune(args)
    storage = f"sqlite:///{tmp_path / 'tune' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed and all(t.params["method.lr"] == 1e30 and "diverged" in t.user_attrs["diverged"]
                          for t in failed)
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2
    assert read_tuned(str(best))["params"] == {"method.lr": 1e-4}


def test_closer_to_oracle_metrics_cannot_be_an_objective():
    pytest.importorskip("optuna")
    from unlearnbench.tuning.cli import direction_of

    assert direction_of("val_avg_gap") == "minimize" and direction_of("tow") == "maximize"
    with pytest.raises(ConfigError, match="objective.*closer to the oracle"):
        direction_of("forget_acc")
