"""The one pipeline: data -> forget set -> original -> oracle -> unlearn -> evaluate -> CSV.

``run`` is the stage order and nothing else; each stage is a function below it that takes
plain objects and returns what it made. Every config value is checked (``plan``) before
any data is loaded or any model trained.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch import nn

from unlearnbench.cache import CorruptEntry, ModelCache, array_sha
from unlearnbench.data import DataBundle, load_data
from unlearnbench.data.forget import ForgetSet
from unlearnbench.engine import RunContext, fit
from unlearnbench.engine.train_log import COLUMNS as LOG_COLUMNS, TrainLog
from unlearnbench.engine.finite import check_outputs, check_weights, first_nonfinite
from unlearnbench.errors import ConfigError, Diverged, UnlearnbenchError
from unlearnbench.evaluators import EvalContext, Scored
from unlearnbench.evaluators.base import ROLES, metric_info
from unlearnbench.evaluators.scores import per_example_scores, write_scores
from unlearnbench.methods import UnlearnData, Unlearned, as_unlearned
from unlearnbench.plan import Plan, plan, seed_everything
from unlearnbench.references import REFERENCE_ROLES, ReferenceRows, reference_material
from unlearnbench.registry import METHODS
from unlearnbench.results import finished, metrics_frame, provenance, read_checked, write_atomic
from unlearnbench.summary import summary_text

log = logging.getLogger("unlearnbench")
STAGE_OF_ROLE = {"original": "original training", "retrain": "oracle training", "unlearned": "method"}


@dataclass
class RunResult:
    """What one run produced: its metrics.csv rows, its models and its folder.

    ``models`` holds ``original``, ``retrain`` (the oracle) and ``unlearned``; it is empty
    for a finished run that was skipped. ``objective`` is the unlearned model's value of the
    metric named by ``objective=`` (None when that is null, or a skipped run lacks it).
    """

    run_dir: Path
    metrics: pd.DataFrame
    models: Dict[str, nn.Module] = field(default_factory=dict)
    skipped: bool = False
    objective: Optional[float] = None

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.csv"


def run(cfg: DictConfig) -> RunResult:
    """Runs one configured experiment; a finished one is skipped unless ``overwrite``."""
    out_dir = run_dir_of(cfg)
    if not cfg.overwrite and finished(out_dir):
        log.info("finished run found at %s; skipping (overwrite=true reruns it)", out_dir)
        frame = read_checked(out_dir / "metrics.csv")
        return RunResult(out_dir, frame, skipped=True, objective=objective_of(frame, cfg.get("objective")))
    p = plan(cfg)
    cache = ModelCache(cfg.cache_dir)
    check_writable(out_dir, "output_root" if cfg.get("run_dir") is None else "run_dir")
    cache.check_writable()
    ctx = p.start(cache=cache)
    with ctx.timer("data"):
        data, forget = load_stage(p, ctx)
    warm_up(p, data, ctx)
    train_data, injected = inject_stage(p, data, forget, ctx)  # optional: SPD's inject mode
    udata = unlearn_data(p, train_data, forget)
    record_forget_set(out_dir, forget)
    original, original_rec = train_stage(p, train_data, train_data.train, ctx, "original",
                                         p.training_material(train_data, forget, "original", injected))
    oracle, oracle_rec = train_stage(p, data, udata.retain, ctx, "oracle",
                                     p.training_material(data, forget, "oracle"))
    seed_everything(p.seed + 1)
    with ctx.timer("unlearn"):
        result = unlearn_stage(p, original, oracle, udata, ctx)
    unlearn_s = oracle_rec.seconds if p.method.uses_oracle else ctx.timings["unlearn_s"]
    models = {"original": original, "retrain": oracle, "unlearned": result.model}
    seconds = {"original": None, "retrain": oracle_rec.seconds, "unlearned": unlearn_s}
    with ctx.timer("eval"):
        by_role, scored, reused = evaluate_stage(p, models, data, udata, forget, result, seconds, ctx)
    records = {"original": original_rec, "oracle": oracle_rec}
    check_metrics(by_role)
    score_stage(out_dir, scored, forget)
    frame = metrics_of(p, forget, by_role, result, records, unlearn_s, ctx, reused)
    save_outputs(p, out_dir, models, result, records, frame)
    write_atomic(frame, out_dir / "metrics.csv")
    log.info("finished; metrics.csv:\n%s", summary_text(frame, out_dir))
    frame = pd.read_csv(out_dir / "metrics.csv")  # as a reader sees it
    return RunResult(out_dir, frame, models, objective=objective_of(frame, p.objective))


def objective_of(frame: pd.DataFrame, name: Optional[str]) -> Optional[float]:
    """The unlearned model's value of metric ``name`` in metrics.csv rows (None if absent)."""
    if name is None:
        return None
    rows = frame[(frame["role"] == "unlearned") & (frame["metric"] == name)]
    if rows.empty:
        log.warning("this run's metrics.csv has no '%s' for the unlearned model; "
                    "overwrite=true recomputes it", name)
        return None
    return float(rows["value"].iloc[0])


# ----------------------------------------------------------------------------- stages

@dataclass
class TrainRecord:
    """How a reference model came to be: its cache key, training seconds, cache hit."""

    cache_key: str
    seconds: Optional[float]  # None: loaded from a user's file, never trained here
    cache_hit: bool
    train_log: List[Dict] = field(default_factory=list)  # per-epoch rows, stored with the model


def run_dir_of(cfg: DictConfig) -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under Hydra: the API (unlearnbench.run) or tests set run_dir
        if cfg.get("run_dir") is None:
            raise ConfigError("run_dir", "outside the unlearnbench command, set run_dir")
        return Path(cfg.run_dir)


def check_writable(folder: Path, key: str) -> None:
    """Raises ConfigError(``key``) unless files can be written in ``folder`` (before any work)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(key, f"cannot write to {folder} ({err.strerror or err})") from err


def fix_key(p: Plan, role: str) -> str:
    """The config key that made ``role``'s model: its checkpoint file, the recipe or the method."""
    stage = {"original": "original", "retrain": "oracle"}.get(role)
    if stage is None:  # the unlearned model
        if p.method.uses_oracle:
            return fix_key(p, "retrain")
        return "method.lr" if "lr" in METHODS.keys_of(p.method.registry_name) else "method.name"
    return p.checkpoints[stage].key if stage in p.checkpoints else "train.lr"


def load_stage(p: Plan, ctx: RunContext):
    """The data on the run's device and the forget set (relabelled data if the spec says so)."""
    data, forget = forget_stage(p, load_data(p.dataset, p.data_root, p.device), ctx)
    log.info("data: %s train %d / val %d / test %d; forget set %d (%s)", p.dataset.get("name"),
             len(data.train), len(data.val), len(data.test), len(forget.forget_idx), p.spec.registry_name)
    return data, forget


def forget_stage(p: Plan, data: DataBundle, ctx: RunContext) -> Tuple[DataBundle, ForgetSet]:
    """The forget set over ``data``'s training split, and the data the run trains on."""
    forget = select_forget(p, data, ctx)
    if forget.train_y is not None:
        data = data.with_train_labels(forget.train_y)
    return data, forget


def select_forget(p: Plan, data: DataBundle, ctx: RunContext) -> ForgetSet:
    """The spec's forget set; specs that rank examples by trained models (``needs_scores``)
    get a ``ScoreSource`` that trains or loads those models through the run's cache."""
    if not p.spec.needs_scores:
        return p.spec.select(data, ctx.seed)
    from unlearnbench.memorization import ScoreSource

    return p.spec.select(data, ctx.seed, scores=ScoreSource(p, ctx))


def warm_up(p: Plan, data: DataBundle, ctx: RunContext) -> None:
    """One untimed step on a throwaway model: first-call costs (kernel selection, allocator,
    autograd threads) would otherwise land in whichever stage happens to run first."""
    model = p.new_model(data).to(ctx.device)
    x, y = data.train.x[: ctx.recipe.batch_size], data.train.y[: ctx.recipe.batch_size]
    with ctx.autocast():
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    ctx.sync()


def inject_stage(p: Plan, data: DataBundle, forget: ForgetSet, ctx: RunContext):
    """The data the original trains on: evaluators' ``prepare_data`` hooks may rewrite the
    forget rows' inputs (SPD's inject mode), nothing else, so the oracle's data stays clean.

    Returns (data, None) when nothing changed, else (new data, hash of the new forget rows).
    """
    prepared = data
    for ev in p.evaluators:
        prepared = ev.prepare_data(prepared, forget, ctx)
    if prepared is data:
        return data, None
    dev = data.train.y.device
    retain, fidx = forget.retain_idx.to(dev), forget.forget_idx.to(dev)
    if not (torch.equal(prepared.train.x[retain], data.train.x[retain])
            and torch.equal(prepared.train.y, data.train.y)
            and prepared.val is data.val and prepared.test is data.test):
        raise RuntimeError("an evaluator's prepare_data changed more than the forget rows' inputs")
    return prepared, array_sha(prepared.train.x[fidx].float().cpu().numpy().tobytes())


def unlearn_data(p: Plan, data: DataBundle, forget: ForgetSet) -> UnlearnData:
    dev = data.train.y.device
    return UnlearnData(forget=data.train.subset(forget.forget_idx.to(dev)),
                       retain=data.train.subset(forget.retain_idx.to(dev)), val=data.val,
                       forget_idx=forget.forget_idx, retain_idx=forget.retain_idx,
                       num_classes=data.num_classes, new_model=lambda: p.new_model(data))


def record_forget_set(out_dir: Path, forget: ForgetSet) -> None:
    """``forget_indices.npy``, and ``memorization.npz`` when the spec ranked examples by it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "forget_indices.npy", forget.forget_idx.numpy())
    if forget.scores is not None:
        np.savez_compressed(out_dir / "memorization.npz", **forget.scores)


def reference_model(p: Plan, data: DataBundle, ctx: RunContext) -> nn.Module:
    """A fresh original/oracle before training: both start from ``ctx.seed``'s initialisation."""
    torch.manual_seed(ctx.seed)
    model = p.new_model(data).to(ctx.device)
    return model.to(memory_format=torch.channels_last) if ctx.channels_last and len(data.input_shape) == 3 else model


def train_reference(p: Plan, data: DataBundle, split, ctx: RunContext, stage: str,
                    after_epoch: Optional[Callable[[nn.Module, int], None]] = None
                    ) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """(state dict, meta) of an original or oracle trained on ``split``: a cache entry's content.

    ``after_epoch(model, epoch)`` observes training (memorization's learning events).
    """
    model = reference_model(p, data, ctx)
    hook = None if after_epoch is None else (lambda epoch: after_epoch(model, epoch))
    curve = TrainLog(data.val, ctx)
    with ctx.timer(f"{stage}_train"):
        fit(model, split, ctx.recipe, ctx, desc=f"train {stage}", after_epoch=hook, curve=curve)
    check_weights(model.state_dict(), f"{stage} training", "train.lr")  # before it is cached
    return model.state_dict(), {"train_s": ctx.timings[f"{stage}_train_s"], "trained_by": "fit",
                                "train_log": curve.rows}


def train_stage(p: Plan, data: DataBundle, split, ctx: RunContext, stage: str,
                material: Dict) -> Tuple[nn.Module, TrainRecord]:
    """The original (on D) or the oracle (on D_r): from the user's file, the cache, or trained."""
    user_file = p.checkpoints.get(stage)
    if user_file is not None:
        model = reference_model(p, data, ctx)
        model.load_state_dict(p.load_checkpoint(stage, model))
        bad = first_nonfinite(model.state_dict())
        if bad is not None:
            raise ConfigError(user_file.key, f"{user_file.path} holds non-finite values in {bad}")
        log.info("%s model: loaded from %s (sha256 %s)", stage, user_file.path, user_file.sha)
        return model.eval(), TrainRecord(f"file:{user_file.sha[:24]}", None, False)

    model = reference_model(p, data, ctx)

    def accept(state):  # an intact file of the wrong shapes or with NaNs is rebuilt, not loaded
        if first_nonfinite(state) is not None:
            raise CorruptEntry("non-finite weights")
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise CorruptEntry(f"state dict does not fit the model: {str(err).splitlines()[0]}") from err

    state, meta, hit = ctx.cache.get_or_build(
        stage, material, ctx.device, lambda: train_reference(p, data, split, ctx, stage), accept)
    model.load_state_dict(state)
    log.info("%s model: %s (key %s, trained in %.1fs%s)", stage, "cache hit" if hit else "trained",
             meta["key"], meta["train_s"], " as one of a bank" if meta.get("trained_by") == "bank" else "")
    return model.eval(), TrainRecord(meta["key"], float(meta["train_s"]), hit, meta.get("train_log", []))


def unlearn_stage(p: Plan, original: nn.Module, oracle: nn.Module, data: UnlearnData,
                  ctx: RunContext) -> Unlearned:
    """θu from a copy of θo (or of θr for ``retrain``); the references stay untouched."""
    start = oracle if p.method.uses_oracle else original
    result = as_unlearned(p.method.unlearn(copy.deepcopy(start), data, ctx))
    result.model.eval()
    check_weights(result.model.state_dict(), "method", fix_key(p, "unlearned"))
    bad = [k for k, v in result.stats.items() if not math.isfinite(float(v))]
    if bad:
        raise Diverged("method", fix_key(p, "unlearned"), f"its stat {bad[0]} is {result.stats[bad[0]]}")
    return result


def evaluate_stage(p: Plan, models: Dict[str, nn.Module], data: DataBundle, udata: UnlearnData,
                   forget: ForgetSet, result: Unlearned, seconds, ctx: RunContext):
    """Every evaluator on every role; the oracle first, since others compare to it.

    Returns the metrics by role and each role's ``Scored`` (its memoised logits)."""
    splits = {"forget": udata.forget, "retain": udata.retain, "val": data.val, "test": data.test}
    scored = {role: Scored(role, models[role], splits, ctx) for role in ROLES}
    for role, sc in scored.items():  # finite outputs, or no metric of this run is written
        for split in splits:
            check_outputs(sc.logits(split), STAGE_OF_ROLE[role], fix_key(p, role), split)
    ectx = EvalContext(run=ctx, scored=scored, timings=seconds, data=data, forget=forget,
                       method_stats=dict(result.stats))
    refs = ReferenceRows(ctx.cache, reference_material(
        p.evaluators, models, data.fingerprint(), forget.forget_idx, p.seed, p.recipe.cache_material(), ctx.device))
    spent = {ev.registry_name: 0.0 for ev in p.evaluators}
    for role in ("retrain", "original", "unlearned"):
        stored = refs.load(role) if role in REFERENCE_ROLES else {}
        fresh = evaluate_role(p.evaluators, scored[role], ectx, stored, spent)
        if role in REFERENCE_ROLES and not stored:
            refs.save(role, {ev.registry_name: fresh[ev.registry_name] for ev in p.evaluators
                             if ev.reusable_reference})
    log.info("evaluated 3 models: %s%s", ", ".join(f"{name} {s:.1f}s" for name, s in spent.items()),
             "; original and oracle rows reused from the reference cache" if refs.all_hit else "")
    by_role = {role: ectx.results[role] for role in ROLES}
    by_role["unlearned"].update({f"method.{k}": float(v) for k, v in result.stats.items()})
    return by_role, scored, refs.all_hit


def evaluate_role(evaluators, model: Scored, ectx: EvalContext, stored: Dict[str, Dict[str, float]],
                  spent: Dict[str, float]) -> Dict[str, Dict[str, float]]:
    """Every evaluator on one role, in order, into ``ectx.results[role]``: reusable evaluators'
    metrics from ``stored`` when there, the rest computed. Returns the computed ones by evaluator."""
    ectx.results[model.role] = {}
    fresh = {}
    for ev in evaluators:
        if ev.reusable_reference and ev.registry_name in stored:
            ectx.results[model.role].update(stored[ev.registry_name])
            continue
        started = time.perf_counter()
        fresh[ev.registry_name] = ev.evaluate(model, ectx)
        ectx.results[model.role].update(fresh[ev.registry_name])
        spent[ev.registry_name] += time.perf_counter() - started
    return fresh


def score_stage(out_dir: Path, scored: Dict[str, Scored], forget: ForgetSet) -> None:
    """``scores.npz``: per-example margins and losses of every role on the forget set, a
    fixed retain sample and the test split, for audits across runs (docs/audit.md)."""
    arrays = per_example_scores(scored, forget.forget_idx.numpy(), forget.retain_idx.numpy())
    write_scores(out_dir / "scores.npz", arrays)


def check_metrics(by_role: Dict[str, Dict[str, float]]) -> None:
    """No infinite metric is written; NaN (a metric undefined here, e.g. on an empty split,
    as its definition says) is written and warned about. Outputs were checked finite."""
    undefined = []
    for role, metrics in by_role.items():
        for name, value in metrics.items():
            if math.isinf(float(value)):
                raise UnlearnbenchError("eval.evaluators", f"metric {name} of the {role} model is "
                                        f"{value}; no metrics written (an evaluator's inputs are degenerate)")
            if math.isnan(float(value)):
                undefined.append(f"{role}/{name}")
    if undefined:
        log.warning("undefined metrics (NaN by their definition): %s", ", ".join(undefined))


def metrics_of(p: Plan, forget: ForgetSet, by_role, result: Unlearned, records: Dict[str, TrainRecord],
               unlearn_s: float, ctx: RunContext, reference_hit: bool = False) -> pd.DataFrame:
    """metrics.csv rows: identity, (role, metric, value, convention), timings, provenance."""
    identity = {"experiment": p.experiment, "dataset": p.dataset["name"], "model": p.model["name"],
                "forget": p.spec.describe(), "forget_size": int(forget.forget_idx.numel()),
                "method": p.method.registry_name, "seed": p.seed}
    device_name = torch.cuda.get_device_name(p.device) if p.device.type == "cuda" else "cpu"
    extra = {"data_s": round(ctx.timings.get("data_s", 0.0), 4)}
    for stage, rec in records.items():
        extra[f"{stage}_train_s"] = None if rec.seconds is None else round(rec.seconds, 4)
    extra.update({
        "unlearn_s": round(unlearn_s, 4) if unlearn_s is not None else None,
        "eval_s": round(ctx.timings.get("eval_s", 0.0), 4),
        "precompute_s": round(ctx.timings.get("precompute_s", 0.0), 4),  # masks etc., inside unlearn_s
        "method_version": p.method.version,
    })
    for stage, rec in records.items():
        extra[f"{stage}_cache_key"] = rec.cache_key
    for stage, rec in records.items():
        extra[f"{stage}_cache_hit"] = rec.cache_hit
    extra["reference_cache_hit"] = reference_hit  # original/oracle metrics reused (references.py)
    extra.update(provenance(device_name))
    conventions = {name: m.higher_is_better for name, m in metric_info().items()}
    return metrics_frame(identity, by_role, conventions, extra)


def save_outputs(p: Plan, out_dir: Path, models: Dict[str, nn.Module], result: Unlearned,
                 records: Dict[str, TrainRecord], frame: pd.DataFrame) -> None:
    """``train_log.csv``; ``method_details.json`` when the method reported details; the models if
    asked; what the ``logger`` group adds (before metrics.csv, the run's finished marker)."""
    curves = write_train_log(out_dir / "train_log.csv", {"original": records["original"].train_log,
                                                         "retrain": records["oracle"].train_log,
                                                         "unlearned": result.train_log})
    if result.details:
        (out_dir / "method_details.json").write_text(json.dumps(result.details, indent=1, default=float))
    if p.save_models:
        folder = out_dir / "models"
        folder.mkdir(exist_ok=True)
        for role, model in models.items():
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(state, folder / f"{role}.pt")
    p.logger.log_run(out_dir, curves, frame)


def write_train_log(path: Path, rows_by_role: Dict[str, List[Dict]]) -> pd.DataFrame:
    """Writes and returns the per-epoch rows of every model trained (or loaded from the cache) here."""
    rows = [{"role": role, **row} for role, rows in rows_by_role.items() for row in rows]
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS)
    frame.to_csv(path, index=False)
    return frame
