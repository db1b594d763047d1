"""``unlearnbench-prefill``: train every original and oracle of a sweep as banks, into the cache.

    unlearnbench-prefill seed='range(16)' dataset=fashion_mnist model=mlp
    unlearnbench -m      seed='range(16)' dataset=fashion_mnist model=mlp   # every model a cache hit

The overrides expand exactly as ``unlearnbench -m`` expands them (Hydra's basic sweeper).
Each setting then goes through the run's own stages up to its cache keys (``plan``, data,
forget set, ``inject_stage``, ``Plan.training_material``), so every model is written under
the key the single run looks up. Models that train on the same data with the same
architecture and recipe (the originals and oracles of a seed sweep) are trained together
by ``engine.bank`` (one vmapped step for all); each entry's meta says ``trained_by: bank``
and its ``train_s`` is its share of the bank's wall time. Models the bank cannot batch
(buffers such as batch norm, dropout, an optimizer it does not implement) are trained one
after another by the run's own ``train_stage``, with a log line saying so.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

if TYPE_CHECKING:
    from torch import Tensor

    from unlearnbench.data import DataBundle, Split
    from unlearnbench.engine import RunContext
    from unlearnbench.plan import Plan

log = logging.getLogger("unlearnbench")


@dataclass
class Job:
    """One original or oracle a run would train: its stage, key material and training rows."""

    stage: str
    material: Dict[str, Any]
    plan: "Plan"
    ctx: "RunContext"
    data: "DataBundle"
    split: "Split"
    rows: Optional["Tensor"]  # indices into ``split``; None = every row

    @property
    def key(self) -> str:
        from unlearnbench.cache import content_key

        return content_key(self.material)

    def bank_group(self) -> str:
        """Jobs with equal groups train on the same rows' data with the same model and recipe."""
        shared = {k: v for k, v in self.material.items() if k not in ("seed", "forget")}
        return json.dumps([shared, str(self.ctx.device)], sort_keys=True, default=str)


@dataclass
class PrefillReport:
    """What a prefill did: models found in the cache, trained by banks, trained one by one."""

    cached: int = 0
    banked: int = 0
    sequential: int = 0
    seconds: float = 0.0
    banks: List[int] = field(default_factory=list)  # members per bank


def expand(overrides: Sequence[str]) -> List[List[str]]:
    """The override lists of every run ``unlearnbench -m <overrides>`` would launch."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [combo for batch in BasicSweeper.split_arguments(parsed, None) for combo in batch]


def jobs_of(overrides: Sequence[str], loaded: Dict[str, "DataBundle"]) -> List[Job]:
    """The original and oracle one run would train, found by the run's own stages.

    ``loaded`` memoises data bundles across settings (one load per dataset config).
    """
    from unlearnbench.cache import ModelCache
    from unlearnbench.config import compose
    from unlearnbench.data import load_data
    from unlearnbench.pipeline import forget_stage, inject_stage
    from unlearnbench.plan import plan

    cfg = compose(list(overrides))
    p = plan(cfg)
    ctx = p.start(cache=ModelCache(cfg.cache_dir))
    where = json.dumps([p.dataset, p.data_root, str(p.device)], sort_keys=True, default=str)
    if where not in loaded:
        loaded[where] = load_data(p.dataset, p.data_root, p.device)
    data, forget = forget_stage(p, loaded[where], ctx)
    train_data, injected = inject_stage(p, data, forget, ctx)
    jobs = []
    if "original" not in p.checkpoints:  # a user's file: nothing to train
        jobs.append(Job("original", p.training_material(train_data, forget, "original", injected),
                        p, ctx, train_data, train_data.train, None))
    if "oracle" not in p.checkpoints:
        jobs.append(Job("oracle", p.training_material(data, forget, "oracle"), p, ctx, data, data.train,
                        forget.retain_idx))
    return jobs


def bank_refusal(job: Job) -> Optional[str]:
    """Why the bank cannot train ``job``'s model as the run would (None: it can)."""
    from torch import nn

    from unlearnbench.engine.bank import can_vmap

    model = job.plan.new_model(job.data)
    if any(True for _ in model.buffers()):
        return "the model has buffers (batch norm)"
    if not can_vmap(model, job.plan.recipe):
        return f"train.optimizer={job.plan.recipe.optimizer} has no vmapped implementation"
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()):
        return "dropout draws would differ from a single run's"
    return None


def prefill(overrides: Sequence[str], group_size: Optional[int] = None, dry_run: bool = False
            ) -> PrefillReport:
    """Trains every original and oracle ``unlearnbench -m <overrides>`` would, into the cache.

    Args:
        overrides: the sweep's overrides, comma lists and ``range(...)`` included.
        group_size: models per vmapped step (bounds memory); default: a whole bank at once.
        dry_run: only report what would be trained.
    """
    start = time.perf_counter()
    report, loaded, todo, seen = PrefillReport(), {}, {}, set()
    for combo in expand(overrides):
        for job in jobs_of(combo, loaded):
            if (job.stage, job.key) in seen:
                continue
            seen.add((job.stage, job.key))
            if job.ctx.cache.load(job.stage, job.key, "cpu") is not None:
                report.cached += 1
            else:
                todo.setdefault(job.bank_group(), []).append(job)
    for jobs in todo.values():
        reason = bank_refusal(jobs[0])
        if reason is not None:
            log.info("prefill: %s, so its %d model(s) train one after another", reason, len(jobs))
            report.sequential += len(jobs) if dry_run else _train_one_by_one(jobs)
        else:
            report.banks.append(len(jobs))
            report.banked += len(jobs) if dry_run else _train_bank(jobs, group_size)
    report.seconds = time.perf_counter() - start
    return report


def _train_one_by_one(jobs: List[Job]) -> int:
    from unlearnbench.pipeline import train_stage

    for job in jobs:
        split = job.split if job.rows is None else job.split.subset(job.rows)
        train_stage(job.plan, job.data, split, job.ctx, job.stage, job.material)
    return len(jobs)


def _train_bank(jobs: List[Job], group_size: Optional[int]) -> int:
    """One bank for ``jobs`` (same data, model, recipe); each member stored under its key."""
    import torch

    from unlearnbench.engine.bank import train_bank
    from unlearnbench.engine.finite import check_weights

    first = jobs[0]
    masks = torch.zeros(len(jobs), len(first.split), dtype=torch.bool)
    for i, job in enumerate(jobs):
        masks[i, slice(None) if job.rows is None else job.rows.cpu()] = True
    log.info("prefill: training %d models as one bank (%s)", len(jobs),
             ", ".join(f"{j.stage} seed {j.plan.seed}" for j in jobs[:4]) + (", ..." if len(jobs) > 4 else ""))
    ctx = replace(first.ctx, seed=0)
    t0 = time.perf_counter()
    states = train_bank(lambda: first.plan.new_model(first.data), first.split, masks, first.plan.recipe, ctx,
                        seeds=[j.plan.seed for j in jobs], group_size=group_size, desc="prefill bank")
    ctx.sync()
    bank_s = time.perf_counter() - t0
    meta = {"train_s": bank_s / len(jobs), "trained_by": "bank", "bank_size": len(jobs), "bank_s": bank_s}
    for job, state in zip(jobs, states):
        check_weights(state, f"{job.stage} training (seed {job.plan.seed}, in a bank)", "train.lr")  # before it is cached
        job.ctx.cache.get_or_build(job.stage, job.material, job.ctx.device, lambda s=state: (s, dict(meta)))
    return len(jobs)


def main(argv: Optional[Sequence[str]] = None) -> PrefillReport:
    parser = argparse.ArgumentParser(
        prog="unlearnbench-prefill",
        description="Train every original and oracle that `unlearnbench -m <overrides>` would train, "
                    "as banks of models trained together, into the model cache.")
    parser.add_argument("overrides", nargs="*", help="the sweep's overrides, e.g. seed='range(16)' dataset=digits")
    parser.add_argument("--group-size", type=int, default=None, help="models per vmapped step (memory bound)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be trained; train nothing")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    from unlearnbench.config import register_resolvers

    register_resolvers()
    report = prefill(args.overrides, args.group_size, args.dry_run)
    verb = "would train" if args.dry_run else "trained"
    print(f"prefill: {report.cached} model(s) already cached; {verb} {report.banked} in "
          f"{len(report.banks)} bank(s) {report.banks} and {report.sequential} one after another; "
          f"{report.seconds:.1f}s")
    return report


if __name__ == "__main__":
    main()
