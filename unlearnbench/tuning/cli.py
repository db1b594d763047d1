"""``unlearnbench-tune``: tune one method's hyperparameters against the oracle with Optuna.

    unlearnbench-tune method=gradient_ascent dataset=fashion_mnist seed=0 --trials 20

Every trial is ``unlearnbench.run(overrides + sampled parameters)``: a normal run dir under
``<output_root>/runs`` that reuses the cached original and oracle, and whose metrics.csv holds
the objective (``objective=``, default ``val_avg_gap``, which never reads the test split).
The study lives in an Optuna SQLite file, so re-running the command resumes it and several
copies of the command (shells, cluster tasks) share its trials. The best parameters go to a
YAML file that ``unlearnbench ... +tuned=<file>`` applies.

Why not hydra-optuna-sweeper: its last release (1.3.0) pins ``optuna<3``, and Optuna 2.10
cannot open a SQLite study with SQLAlchemy 2 (its storage asserts on the schema version), so
the sweeper's resumable storage needs a 2022 dependency set. Against a current Optuna (forced
with ``--no-deps``) it runs on deprecated distributions that Optuna 6 removes. docs/tuning.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import OmegaConf

from unlearnbench.errors import ConfigError, Diverged

log = logging.getLogger("unlearnbench.tune")
# Keys that choose where things go or how they print, never what a trial computes.
NOT_STUDY_KEYS = ("overwrite", "progress", "output_root", "cache_dir", "data_root", "device",
                  "run_dir", "threads", "save_models")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="unlearnbench-tune", description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="unlearnbench overrides, e.g. method=finetune seed=0")
    p.add_argument("--trials", type=int, required=True,
                   help="finished (COMPLETE) trials the study should hold; a rerun tops it up")
    p.add_argument("--search", type=Path, help="search-space file (default conf/search/<method>.yaml)")
    p.add_argument("--out", type=Path, help="best-parameter YAML (default <output_root>/tune/<study>/best.yaml)")
    p.add_argument("--storage", help="Optuna storage URL (default sqlite:///<output_root>/tune/optuna.db)")
    p.add_argument("--sampler-seed", type=int, default=0, help="TPE seed (offset by the trials already run)")
    p.add_argument("--startup-trials", type=int, default=5, help="random trials before TPE models the space")
    args = p.parse_args(argv)
    if args.trials < 1:
        p.error("--trials must be at least 1")
    return args


def direction_of(objective: Optional[str]) -> str:
    """``minimize`` for ↓ metrics, ``maximize`` for ↑; closer-to-oracle metrics cannot be tuned."""
    from unlearnbench.evaluators.base import metric_info

    if objective is None:
        raise ConfigError("objective", "is null; name the metric to optimise, e.g. objective=val_avg_gap")
    info = metric_info()
    if objective not in info:
        raise ConfigError("objective", f"unknown metric '{objective}'")
    if info[objective].higher_is_better is None:
        raise ConfigError("objective", f"'{objective}' is better when closer to the oracle, which has no "
                                       "direction; tune its gap instead (e.g. forget_acc_gap, val_avg_gap)")
    return "maximize" if info[objective].higher_is_better else "minimize"


def study_name(cfg, space: Dict[str, str]) -> str:
    """Where the study sits: the run-dir layout, a hash of everything a trial computes except
    the searched values (plus the objective and the space), and the seed."""
    from unlearnbench.config import _short_hash

    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_STUDY_KEYS + ("seed",):
        plain.pop(key, None)
    for key in space:
        plain["method"].pop(key.split(".", 1)[1], None)
    digest = _short_hash(plain, space)
    return (f"{cfg.dataset.name}-{cfg.model.name}/{cfg.forget.name}/{cfg.method.name}/"
            f"{digest}/seed{cfg.seed}")


def open_study(storage_url: str, name: str, direction: str, seed: int, startup: int):
    """The study, created or resumed; heartbeats let a killed worker's trial be marked failed."""
    import warnings

    import optuna

    with warnings.catch_warnings():  # heartbeat_interval is "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(storage_url, heartbeat_interval=30,
                                             engine_kwargs={"connect_args": {"timeout": 60}})
    study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                load_if_exists=True)
    # Offsetting the seed by the trials so far keeps a resumed study from re-proposing the
    # first process's random start-up points.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), n_startup_trials=startup)
    return study


def make_objective(base: List[str], dists: Dict[str, Any]):
    """Optuna's objective: one ``unlearnbench.run`` with the trial's parameters."""
    from unlearnbench.api import run
    from unlearnbench.tuning.space import suggest
    from unlearnbench.tuning.tuned import override_value

    def objective(trial) -> float:
        params = {key: suggest(trial, key, dist) for key, dist in dists.items()}
        try:
            result = run(base + [f"{k}={override_value(v)}" for k, v in params.items()])
        except Diverged as err:  # a legitimate outcome of these values: the trial FAILS, tuning goes on
            trial.set_user_attr("diverged", str(err))
            raise
        trial.set_user_attr("run_dir", str(result.run_dir))
        trial.set_user_attr("reused_finished_run", bool(result.skipped))
        if result.objective is None:
            raise RuntimeError(f"{result.run_dir}/metrics.csv has no objective value; "
                               "add overwrite=true to recompute finished runs")
        return result.objective  # NaN (a diverged model) marks the trial FAILED

    return objective


def complete_trials(study) -> list:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def optimise(study, objective, trials: int) -> None:
    """Runs trials until the study holds ``trials`` complete ones (all workers together).

    Failed trials (diverged models) do not count; at most twice the missing number are
    attempted per call, so a method that fails every time still stops.
    """
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    missing = trials - len(complete_trials(study))
    if missing <= 0:
        log.info("study %s already holds %d complete trials", study.study_name, trials)
        return
    study.optimize(objective, n_trials=2 * missing, catch=(Diverged,),
                   callbacks=[MaxTrialsCallback(trials, states=(TrialState.COMPLETE,))])


def results(study, method: str, objective: str, storage: str, base: List[str]) -> Dict[str, Any]:
    """The best trial's parameters and where they came from (for the tuned file)."""
    done = complete_trials(study)
    if not done:
        raise RuntimeError(f"study {study.study_name} has no complete trial; see the failed runs' logs")
    best = study.best_trial
    about = {"objective": objective, "direction": study.direction.name.lower(),
             "value": float(best.value), "best_trial": best.number,
             "complete_trials": len(done), "study": study.study_name, "storage": storage,
             "tuned_with": list(base), "best_run_dir": best.user_attrs.get("run_dir")}
    return {"params": dict(best.params), "about": about, "method": method}


def write_trials(study, path: Path) -> None:
    """Every trial of the study as CSV: number, state, value, parameters, run dir."""
    frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs",
                                          "duration"))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def main(argv: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    args = parse_args(argv)
    try:
        import optuna  # noqa: F401
    except ImportError:
        sys.exit('unlearnbench-tune needs Optuna: pip install "unlearnbench[tune]"')
    try:
        tune(args)
    except ConfigError as e:
        sys.exit(f"unlearnbench-tune: {e}")


def tune(args: argparse.Namespace) -> Path:
    """Creates or resumes the study, runs the missing trials, writes best.yaml and trials.csv."""
    from unlearnbench.config import compose
    from unlearnbench.plan import plan
    from unlearnbench.tuning.space import check_space, distributions, read_space, search_file
    from unlearnbench.tuning.tuned import write_tuned

    base = list(args.overrides)
    cfg = compose(base)
    if cfg.get("run_dir") is not None:
        raise ConfigError("run_dir", "every trial needs its own run dir; leave run_dir unset")
    space = read_space(args.search or search_file(cfg.method.name))
    check_space(space, cfg, base)
    dists = distributions(space)
    plan(cfg)  # every other key is valid before the first trial
    direction = direction_of(cfg.objective)
    name = study_name(cfg, space)
    tune_dir = Path(cfg.output_root) / "tune"
    tune_dir.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{tune_dir / 'optuna.db'}"
    study = open_study(storage, name, direction, args.sampler_seed, args.startup_trials)
    optimise(study, make_objective(base, dists), args.trials)
    best = results(study, cfg.method.name, cfg.objective, storage, base)
    out = args.out or tune_dir / name / "best.yaml"
    write_tuned(out, best["method"], best["params"], best["about"])
    write_trials(study, out.with_name(out.stem + "_trials.csv"))
    log.info("best %s = %.4g (trial %d of %d complete): %s -> %s", cfg.objective,
             best["about"]["value"], best["about"]["best_trial"], best["about"]["complete_trials"],
             best["params"], out)
    return out


if __name__ == "__main__":
    main()
