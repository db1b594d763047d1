"""The one pipeline: data -> forget set -> original -> oracle -> unlearn -> evaluate -> CSV.

Only ``run(cfg)`` knows the order. Every config value is checked (by building every
component) before any data is loaded or any model trained.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from unlearnbench.cache import ModelCache
from unlearnbench.data import DataBundle, load_data
from unlearnbench.data.forget import ForgetSet, ForgetSpec, build_forget_spec
from unlearnbench.engine import Recipe, RunContext, configure_threads, fit
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators import EvalContext, Evaluator, Scored, build_evaluators
from unlearnbench.evaluators.base import ROLES
from unlearnbench.methods import Method, UnlearnData, build_method
from unlearnbench.models import build_model
from unlearnbench.registry import MODELS
from unlearnbench.results import metrics_frame, provenance, write_atomic

log = logging.getLogger("unlearnbench")

# Bump when training an original/oracle changes results, so stale cache entries are not reused.
TRAIN_STAGE_VERSION = "2"  # 2: one-shot epoch shuffles (engine), threads setting


@dataclass
class Plan:
    """Everything built from the config before any expensive work."""

    method: Method
    spec: ForgetSpec
    evaluators: List[Evaluator]
    recipe: Recipe
    device: torch.device


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but is not available; use device=cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError("device", f"'{name}' is not auto, cpu or cuda[:N]")
    return torch.device(name)


def plan(cfg: DictConfig) -> Plan:
    """Builds and validates every component; raises ConfigError naming the key."""
    c = OmegaConf.to_container(cfg, resolve=True)
    MODELS.get(c["model"]["name"])
    return Plan(
        method=build_method(c["method"]),
        spec=build_forget_spec(c["forget"]),
        evaluators=build_evaluators(c["eval"]["evaluators"], c["eval"].get("params")),
        recipe=Recipe.from_cfg(c["train"]),
        device=resolve_device(str(c["device"])),
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _data_material(cfg: DictConfig, data: DataBundle) -> Dict[str, Any]:
    dataset = {k: v for k, v in OmegaConf.to_container(cfg.dataset, resolve=True).items()
               if k not in ("download", "verify_md5", "path")}
    return {"dataset": dataset, "fingerprint": data.fingerprint()}


def warm_up(cfg: DictConfig, data: DataBundle, ctx: RunContext) -> None:
    """One untimed step on a throwaway model: first-call costs (kernel selection, allocator,
    autograd threads) would otherwise land in whichever stage happens to run first."""
    model = build_model(OmegaConf.to_container(cfg.model, resolve=True), data.input_shape,
                        data.num_classes).to(ctx.device)
    x, y = data.train.x[: ctx.recipe.batch_size], data.train.y[: ctx.recipe.batch_size]
    with ctx.autocast():
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    ctx.sync()


def train_model(cfg: DictConfig, data: DataBundle, train_split, ctx: RunContext, stage: str,
                material: Dict[str, Any]) -> torch.nn.Module:
    """Trains (or loads from the cache) a model from scratch on ``train_split``."""
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)

    def new_model() -> torch.nn.Module:
        torch.manual_seed(ctx.seed)  # original and oracle start from the same initialisation
        model = build_model(model_cfg, data.input_shape, data.num_classes).to(ctx.device)
        return model.to(memory_format=torch.channels_last) if ctx.on_cuda and len(data.input_shape) == 3 else model

    def build():
        model = new_model()
        with ctx.timer(f"{stage}_train"):
            fit(model, train_split, ctx.recipe, ctx, desc=f"train {stage}", stream=0)
        return model.state_dict(), {"train_s": ctx.timings[f"{stage}_train_s"]}

    state, meta, hit = ctx.cache.get_or_build(stage, material, ctx.device, build)
    model = new_model()
    model.load_state_dict(state)
    model.eval()
    ctx.extras[f"{stage}_train_s"] = float(meta["train_s"])
    ctx.extras[f"{stage}_cache_key"] = meta["key"]
    ctx.extras[f"{stage}_cache_hit"] = hit
    log.info("%s model: %s (key %s, trained in %.1fs)", stage, "cache hit" if hit else "trained",
             meta["key"], meta["train_s"])
    return model


def _material(cfg, data, ctx, forget: ForgetSet, spec: ForgetSpec, stage: str) -> Dict[str, Any]:
    recipe = {k: v for k, v in asdict(ctx.recipe).items() if k not in ("eval_batch_size", "compile")}
    if recipe["lr_scaling"] == "none":  # then they change nothing: keep older cache keys valid
        del recipe["lr_scaling"], recipe["base_batch_size"]
    if recipe["augment"] != "none":  # augmentation draws are per epoch since engine v2
        recipe["augment_draws"] = "per_epoch"
    m = {"stage_version": TRAIN_STAGE_VERSION, **_data_material(cfg, data),
         "model": OmegaConf.to_container(cfg.model, resolve=True), "recipe": recipe, "seed": ctx.seed}
    if stage == "oracle" or spec.modifies_train:
        idx = forget.forget_idx.numpy().tobytes()
        m["forget"] = {"spec": spec.describe(), "indices_sha": hashlib.sha256(idx).hexdigest()[:16]}
    return m


def _prepare_data(evaluators, data: DataBundle, forget: ForgetSet, ctx: RunContext):
    """Runs the evaluators' ``prepare_data`` hooks (SPD inject) before the original is trained.

    Returns (data, None) when nothing changed, else (new data, hash of the new forget rows).
    Hooks may only rewrite forget rows of the training split, so the oracle (trained on D_r)
    and its cache key stay those of the clean data.
    """
    clean = data
    for ev in evaluators:
        data = ev.prepare_data(data, forget, ctx)
    if data is clean:
        return data, None
    dev = clean.train.y.device
    retain, fidx = forget.retain_idx.to(dev), forget.forget_idx.to(dev)
    if not (torch.equal(data.train.x[retain], clean.train.x[retain])
            and torch.equal(data.train.y, clean.train.y)
            and data.val is clean.val and data.test is clean.test):
        raise RuntimeError("an evaluator's prepare_data changed more than the forget rows' inputs")
    rows = data.train.x[fidx].float().cpu().numpy().tobytes()
    return data, hashlib.sha256(rows).hexdigest()[:16]


def _evaluate(models: Dict[str, torch.nn.Module], splits, evaluators, ctx: RunContext,
              seconds: Dict[str, Optional[float]]) -> Dict[str, Dict[str, float]]:
    scored = {role: Scored(role, models[role], splits, ctx) for role in ROLES}
    ectx = EvalContext(run=ctx, scored=scored, timings=seconds)
    for role in ("retrain", "original", "unlearned"):  # the oracle first: others compare to it
        ectx.results[role] = {}
        for ev in evaluators:
            ectx.results[role].update(ev.evaluate(scored[role], ectx))
    return {role: ectx.results[role] for role in ROLES}


def run_dir_of(cfg: DictConfig) -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under Hydra (tests, notebooks): use the configured folder
        if cfg.get("run_dir") is None:
            raise ConfigError("run_dir", "outside the unlearnbench command, set run_dir")
        return Path(cfg.run_dir)


def run(cfg: DictConfig) -> Optional[Path]:
    """Runs one configured experiment; returns the metrics.csv path (None if skipped)."""
    out_dir = run_dir_of(cfg)
    out_csv = out_dir / "metrics.csv"
    if out_csv.exists() and not cfg.overwrite:
        log.info("finished run found at %s; skipping (overwrite=true reruns it)", out_csv)
        return None
    p = plan(cfg)
    seed_everything(cfg.seed)
    configure_threads(cfg.get("threads"))
    ctx = RunContext(device=p.device, seed=int(cfg.seed), recipe=p.recipe, num_classes=0,
                     show_progress=bool(cfg.progress), run_dir=out_dir,
                     cache=ModelCache(cfg.cache_dir))
    with ctx.timer("data"):
        data = load_data(OmegaConf.to_container(cfg.dataset, resolve=True), cfg.data_root, p.device)
        forget = p.spec.select(data, ctx.seed)
        if forget.train_y is not None:
            data = data.with_train_labels(forget.train_y)
    ctx.num_classes = data.num_classes
    # Methods that need a fresh initialisation of the architecture (DEL's reset) call this.
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    ctx.extras["model_factory"] = lambda: build_model(model_cfg, data.input_shape, data.num_classes)
    warm_up(cfg, data, ctx)
    ctx.extras.update(data=data, forget_set=forget)  # the clean data, for evaluators (SPD)
    clean_data = data
    data, injected = _prepare_data(p.evaluators, data, forget, ctx)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "forget_indices.npy", forget.forget_idx.numpy())
    dev_idx = (forget.forget_idx.to(p.device), forget.retain_idx.to(p.device))
    udata = UnlearnData(forget=data.train.subset(dev_idx[0]), retain=data.train.subset(dev_idx[1]),
                        val=data.val, forget_idx=forget.forget_idx, retain_idx=forget.retain_idx,
                        num_classes=data.num_classes)
    log.info("data %s: %d train (%d forget, %d retain), %d val, %d test", data.name, len(data.train),
             len(udata.forget), len(udata.retain), len(data.val), len(data.test))

    original_material = _material(cfg, data, ctx, forget, p.spec, "original")
    if injected is not None:  # the original trains on rewritten forget rows: key on their content
        original_material["prepared_forget_rows"] = injected
    original = train_model(cfg, data, data.train, ctx, "original", original_material)
    oracle = train_model(cfg, clean_data, udata.retain, ctx, "oracle",
                         _material(cfg, clean_data, ctx, forget, p.spec, "oracle"))
    ctx.original, ctx.oracle = original, oracle
    seed_everything(cfg.seed + 1)
    with ctx.timer("unlearn"):
        unlearned = p.method.unlearn(copy.deepcopy(original), udata, ctx)
    unlearned.eval()
    unlearn_s = ctx.extras["oracle_train_s"] if p.method.uses_oracle else ctx.timings["unlearn_s"]
    seconds = {"original": None, "retrain": ctx.extras["oracle_train_s"], "unlearned": unlearn_s}
    splits = {"forget": udata.forget, "retain": udata.retain, "val": data.val, "test": data.test}
    with ctx.timer("eval"):
        by_role = _evaluate({"original": original, "retrain": oracle, "unlearned": unlearned},
                            splits, p.evaluators, ctx, seconds)
    frame = _frame(cfg, p, ctx, forget, by_role, unlearn_s)
    write_atomic(frame, out_csv)
    log.info("wrote %s (%d rows)", out_csv, len(frame))
    return out_csv


def _frame(cfg, p: Plan, ctx: RunContext, forget: ForgetSet, by_role, unlearn_s: float):
    from unlearnbench.evaluators.base import metric_info

    identity = {"experiment": cfg.get("experiment_name") or "", "dataset": cfg.dataset.name,
                "model": cfg.model.name, "forget": p.spec.describe(),
                "forget_size": int(forget.forget_idx.numel()), "method": cfg.method.name,
                "seed": int(cfg.seed)}
    device_name = torch.cuda.get_device_name(p.device) if p.device.type == "cuda" else "cpu"
    extra = {
        "data_s": round(ctx.timings.get("data_s", 0.0), 4),
        "original_train_s": round(ctx.extras["original_train_s"], 4),
        "oracle_train_s": round(ctx.extras["oracle_train_s"], 4),
        "unlearn_s": round(unlearn_s, 4),
        "eval_s": round(ctx.timings.get("eval_s", 0.0), 4),
        "precompute_s": round(ctx.timings.get("precompute_s", 0.0), 4),  # masks etc., inside unlearn_s
        "method_version": p.method.version,
        "original_cache_key": ctx.extras["original_cache_key"],
        "oracle_cache_key": ctx.extras["oracle_cache_key"],
        **provenance(device_name),
    }
    conventions = {name: m.higher_is_better for name, m in metric_info().items()}
    return metrics_frame(identity, by_role, conventions, extra)
