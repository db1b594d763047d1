"""The one pipeline: data -> forget set -> original -> oracle -> unlearn -> evaluate -> CSV.

``run`` is the stage order and nothing else; each stage is a function below it that takes
plain objects and returns what it made. Every config value is checked (``plan``) before
any data is loaded or any model trained.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch import nn

from unlearnbench.cache import ModelCache, array_sha
from unlearnbench.data import DataBundle, load_data
from unlearnbench.data.forget import ForgetSet
from unlearnbench.engine import RunContext, fit
from unlearnbench.evaluators import EvalContext, Scored
from unlearnbench.evaluators.base import ROLES, metric_info
from unlearnbench.evaluators.scores import per_example_scores, write_scores
from unlearnbench.methods import UnlearnData, Unlearned, as_unlearned
from unlearnbench.plan import Plan, plan, seed_everything
from unlearnbench.results import metrics_frame, provenance, write_atomic

log = logging.getLogger("unlearnbench")


@dataclass
class RunResult:
    """What one run produced: its metrics.csv rows, its models and its folder.

    ``models`` holds ``original``, ``retrain`` (the oracle) and ``unlearned``; it is empty
    for a finished run that was skipped.
    """

    run_dir: Path
    metrics: pd.DataFrame
    models: Dict[str, nn.Module] = field(default_factory=dict)
    skipped: bool = False

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.csv"


def run(cfg: DictConfig) -> RunResult:
    """Runs one configured experiment; a finished one is skipped unless ``overwrite``."""
    out_dir = run_dir_of(cfg)
    if (out_dir / "metrics.csv").exists() and not cfg.overwrite:
        log.info("finished run found at %s; skipping (overwrite=true reruns it)", out_dir)
        return RunResult(out_dir, pd.read_csv(out_dir / "metrics.csv"), skipped=True)
    p = plan(cfg)
    ctx = p.start(cache=ModelCache(cfg.cache_dir))
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
        by_role, scored = evaluate_stage(p, models, data, udata, forget, result, seconds, ctx)
    score_stage(out_dir, scored, forget)
    records = {"original": original_rec, "oracle": oracle_rec}
    frame = metrics_of(p, forget, by_role, result, records, unlearn_s, ctx)
    save_outputs(p, out_dir, models, result)
    write_atomic(frame, out_dir / "metrics.csv")
    log.info("wrote %s (%d rows)", out_dir / "metrics.csv", len(frame))
    return RunResult(out_dir, pd.read_csv(out_dir / "metrics.csv"), models)  # as a reader sees it


# ----------------------------------------------------------------------------- stages

@dataclass
class TrainRecord:
    """How a reference model came to be: its cache key, training seconds, cache hit."""

    cache_key: str
    seconds: Optional[float]  # None: loaded from a user's file, never trained here
    cache_hit: bool


def run_dir_of(cfg: DictConfig) -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under Hydra: the API (unlearnbench.run) or tests set run_dir
        if cfg.get("run_dir") is None:
            from unlearnbench.errors import ConfigError

            raise ConfigError("run_dir", "outside the unlearnbench command, set run_dir")
        return Path(cfg.run_dir)


def load_stage(p: Plan, ctx: RunContext):
    """The data on the run's device and the forget set (relabelled data if the spec says so)."""
    data = load_data(p.dataset, p.data_root, p.device)
    forget = p.spec.select(data, ctx.seed)
    if forget.train_y is not None:
        data = data.with_train_labels(forget.train_y)
    return data, forget


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
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "forget_indices.npy", forget.forget_idx.numpy())


def train_stage(p: Plan, data: DataBundle, split, ctx: RunContext, stage: str,
                material: Dict) -> Tuple[nn.Module, TrainRecord]:
    """The original (on D) or the oracle (on D_r): from the user's file, the cache, or trained."""
    def new_model() -> nn.Module:
        torch.manual_seed(ctx.seed)  # original and oracle start from the same initialisation
        model = p.new_model(data).to(ctx.device)
        return model.to(memory_format=torch.channels_last) if ctx.on_cuda and len(data.input_shape) == 3 else model

    user_file = p.checkpoints.get(stage)
    if user_file is not None:
        model = new_model()
        model.load_state_dict(p.load_checkpoint(stage, model))
        log.info("%s model: loaded from %s (sha256 %s)", stage, user_file.path, user_file.sha)
        return model.eval(), TrainRecord(f"file:{user_file.sha[:24]}", None, False)

    def build():
        model = new_model()
        with ctx.timer(f"{stage}_train"):
            fit(model, split, ctx.recipe, ctx, desc=f"train {stage}")
        return model.state_dict(), {"train_s": ctx.timings[f"{stage}_train_s"]}

    state, meta, hit = ctx.cache.get_or_build(stage, material, ctx.device, build)
    model = new_model()
    model.load_state_dict(state)
    log.info("%s model: %s (key %s, trained in %.1fs)", stage, "cache hit" if hit else "trained",
             meta["key"], meta["train_s"])
    return model.eval(), TrainRecord(meta["key"], float(meta["train_s"]), hit)


def unlearn_stage(p: Plan, original: nn.Module, oracle: nn.Module, data: UnlearnData,
                  ctx: RunContext) -> Unlearned:
    """θu from a copy of θo (or of θr for ``retrain``); the references stay untouched."""
    start = oracle if p.method.uses_oracle else original
    result = as_unlearned(p.method.unlearn(copy.deepcopy(start), data, ctx))
    result.model.eval()
    return result


def evaluate_stage(p: Plan, models: Dict[str, nn.Module], data: DataBundle, udata: UnlearnData,
                   forget: ForgetSet, result: Unlearned, seconds, ctx: RunContext):
    """Every evaluator on every role; the oracle first, since others compare to it.

    Returns the metrics by role and each role's ``Scored`` (its memoised logits)."""
    splits = {"forget": udata.forget, "retain": udata.retain, "val": data.val, "test": data.test}
    scored = {role: Scored(role, models[role], splits, ctx) for role in ROLES}
    ectx = EvalContext(run=ctx, scored=scored, timings=seconds, data=data, forget=forget,
                       method_stats=dict(result.stats))
    for role in ("retrain", "original", "unlearned"):
        ectx.results[role] = {}
        for ev in p.evaluators:
            ectx.results[role].update(ev.evaluate(scored[role], ectx))
    by_role = {role: ectx.results[role] for role in ROLES}
    by_role["unlearned"].update({f"method.{k}": float(v) for k, v in result.stats.items()})
    return by_role, scored


def score_stage(out_dir: Path, scored: Dict[str, Scored], forget: ForgetSet) -> None:
    """``scores.npz``: per-example margins and losses of every role on the forget set, a
    fixed retain sample and the test split, for audits across runs (docs/audit.md)."""
    arrays = per_example_scores(scored, forget.forget_idx.numpy(), forget.retain_idx.numpy())
    write_scores(out_dir / "scores.npz", arrays)


def metrics_of(p: Plan, forget: ForgetSet, by_role, result: Unlearned,
               records: Dict[str, TrainRecord], unlearn_s: float, ctx: RunContext) -> pd.DataFrame:
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
    extra.update(provenance(device_name))
    conventions = {name: m.higher_is_better for name, m in metric_info().items()}
    return metrics_frame(identity, by_role, conventions, extra)


def save_outputs(p: Plan, out_dir: Path, models: Dict[str, nn.Module], result: Unlearned) -> None:
    """``method_details.json`` when the method reported details; the models if asked."""
    if result.details:
        (out_dir / "method_details.json").write_text(json.dumps(result.details, indent=1, default=float))
    if p.save_models:
        folder = out_dir / "models"
        folder.mkdir(exist_ok=True)
        for role, model in models.items():
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(state, folder / f"{role}.pt")
