#!/usr/bin/env python
"""Benchmark the engine and every pipeline stage on one dataset/model, in one process.

Prints Markdown tables: (1) the engine against a textbook loop (DataLoader over a
TensorDataset, fp32, batch 128, ``loss.item()`` per step) on the same model and data;
(2) each stage: original, oracle, every registered method, scoring, every registered
evaluator; (3) a bank of small MLPs trained together (vmap) vs one after another;
(4) membership-inference features (logits + losses of the whole training split) vs one
training epoch; (5) ``unlearnbench-prefill``: a seed sweep's originals and oracles trained
as banks vs one after another by the run's own train stage; (6) memorization scores: the
heldout bank (K models) and the original's learning events, and their rank correlation.

    python scripts/bench.py                                   # synthetic 3x32x32, mlp, CPU or CUDA
    python scripts/bench.py --dataset fashion_mnist --data-root data   # or "$UNLEARNBENCH_DATA"
    python scripts/bench.py --dataset fashion_mnist --data-root DATA --sections prefill,memorization \
        --epochs 60 --override dataset.limit_train=2500 --override train.weight_decay=0   # audit testbed
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="synthetic", help="synthetic (CIFAR-like 3x32x32), digits, fashion_mnist, ...")
    p.add_argument("--data-root", default="data", help="folder with torchvision-layout datasets")
    p.add_argument("--model", default="mlp", help="a registered model (mlp, cnn, resnet18, ...)")
    p.add_argument("--epochs", type=int, default=1, help="training epochs for every timed training run")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--sections", default="engine,stages,bank,eval",
                   help="comma list of: engine, stages, bank, eval, prefill, memorization")
    p.add_argument("--prefill-seeds", type=int, default=16,
                   help="seeds (an original and an oracle each) in the prefill section")
    p.add_argument("--memorization-k", type=int, default=32,
                   help="heldout bank size in the memorization section")
    p.add_argument("--bank-models", type=int, default=16, help="models in the bank section")
    p.add_argument("--bank-hidden", type=int, default=64, help="hidden width of the bank's one-layer MLPs")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: as the pipeline)")
    p.add_argument("--override", action="append", default=[],
                   help="extra config override, e.g. --override dataset.n_train=20000 (repeatable)")
    return p.parse_args(argv)


def table(title: str, header: Sequence[str], rows: List[Sequence]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    sys.stdout.flush()


class Bench:
    """The composed config, data, forget set and a context shared by every section."""

    def __init__(self, args: argparse.Namespace):
        import torch

        from unlearnbench.config import compose
        from unlearnbench.data import load_data
        from unlearnbench.engine import RunContext, configure_threads
        from unlearnbench.methods import UnlearnData
        from unlearnbench.plan import plan

        self.args = args
        self.overrides = [f"dataset={args.dataset}", f"model={args.model}", f"device={args.device}",
                          f"data_root={args.data_root}", f"train.epochs={args.epochs}", "progress=false",
                          "run_dir=/tmp/unlearnbench-bench", *args.override]
        self.cfg = compose(self.overrides)
        self.threads = configure_threads(args.threads)
        p = plan(self.cfg)
        self.device, self.recipe = p.device, p.recipe
        self.ctx = RunContext(device=p.device, seed=int(self.cfg.seed), recipe=p.recipe, show_progress=False)
        t0 = time.perf_counter()
        from omegaconf import OmegaConf

        self.data = load_data(OmegaConf.to_container(self.cfg.dataset, resolve=True), self.cfg.data_root,
                              p.device)
        self.data_s = time.perf_counter() - t0
        self.forget = forget = p.spec.select(self.data, self.ctx.seed)
        dev_f, dev_r = forget.forget_idx.to(p.device), forget.retain_idx.to(p.device)
        self.udata = UnlearnData(forget=self.data.train.subset(dev_f), retain=self.data.train.subset(dev_r),
                                 val=self.data.val, forget_idx=forget.forget_idx,
                                 retain_idx=forget.retain_idx, num_classes=self.data.num_classes,
                                 new_model=lambda: p.new_model(self.data))
        self.torch = torch

    def new_model(self):
        from unlearnbench.models import build_model
        from omegaconf import OmegaConf

        self.torch.manual_seed(self.ctx.seed)
        m = build_model(OmegaConf.to_container(self.cfg.model, resolve=True), self.data.input_shape,
                        self.data.num_classes).to(self.device)
        if self.ctx.on_cuda and len(self.data.input_shape) == 3:
            m = m.to(memory_format=self.torch.channels_last)
        return m

    def timed(self, fn: Callable[[], object]):
        self.ctx.sync()
        t0 = time.perf_counter()
        out = fn()
        self.ctx.sync()
        return time.perf_counter() - t0, out

    def timed_cpu(self, fn: Callable[[], object]):
        """(wall s, CPU s of this process, result): CPU seconds move less with others' load."""
        c0 = time.process_time()
        wall, out = self.timed(fn)
        return wall, time.process_time() - c0, out


def reference_fit(model, x, y, recipe, device, epochs: int) -> float:
    """The textbook loop: DataLoader over a host TensorDataset, fp32, per-step .item()."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
    model.train()
    running = 0.0
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
    model.eval()
    return running


def section_engine(b: Bench) -> None:
    from dataclasses import replace

    from unlearnbench.engine import fit

    recipe = replace(b.recipe, batch_size=128, epochs=b.args.epochs, augment="none", max_batches=None)
    x_host, y_host = b.data.train.x.cpu(), b.data.train.y.cpu()
    rows = []
    for _ in range(2):  # the first round warms up allocators and kernels; report the second
        ref_s, _ = b.timed(lambda: reference_fit(b.new_model(), x_host, y_host, recipe, b.device,
                                                 b.args.epochs))
        eng_s, _ = b.timed(lambda: fit(b.new_model(), b.data.train, recipe, b.ctx, desc="engine"))
        rows = [["textbook DataLoader loop (fp32, batch 128)", ref_s, 1.0],
                ["unlearnbench engine (resident tensors" + (", bf16, channels_last)" if b.ctx.on_cuda else ")"),
                 eng_s, ref_s / eng_s]]
    table(f"Engine vs textbook loop: {b.args.epochs} epoch(s), {len(b.data.train)} examples",
          ["loop", "seconds", "speed-up"], rows)


def section_stages(b: Bench) -> None:
    from unlearnbench.config import compose
    from unlearnbench.engine import fit
    from unlearnbench.evaluators import EvalContext, Scored
    from unlearnbench.evaluators.base import ROLES
    from unlearnbench.pipeline import unlearn_stage
    from unlearnbench.plan import plan
    from unlearnbench.registry import EVALUATORS, METHODS

    rows = [["data load", b.data_s, ""]]
    t, original = b.timed(lambda: fit(b.new_model(), b.data.train, b.recipe, b.ctx, desc="original"))
    rows.append(["train original", t, f"{b.recipe.epochs} epoch(s) on {len(b.data.train)}"])
    t, oracle = b.timed(lambda: fit(b.new_model(), b.udata.retain, b.recipe, b.ctx, desc="oracle"))
    rows.append(["train oracle (retrain)", t, f"{b.recipe.epochs} epoch(s) on {len(b.udata.retain)}"])
    unlearned: Dict[str, object] = {}
    for name in METHODS.names():
        try:
            p = plan(compose([*b.overrides, f"method={name}"]))
            b.ctx.recipe = p.recipe
            t, result = b.timed(lambda: unlearn_stage(p, original, oracle, b.udata, b.ctx))
            unlearned[name] = result.model
            rows.append([f"method {name}", t, ""])
        except Exception as err:  # a benchmark reports a broken method and goes on
            rows.append([f"method {name}", "failed", f"{type(err).__name__}: {err}"[:80]])
            traceback.print_exc()
        finally:
            b.ctx.recipe = b.recipe
    model_u = unlearned.get("finetune") or next(iter(unlearned.values()), original)
    splits = {"forget": b.udata.forget, "retain": b.udata.retain, "val": b.data.val, "test": b.data.test}
    models = {"original": original, "retrain": oracle, "unlearned": model_u}
    scored = {role: Scored(role, models[role], splits, b.ctx) for role in ROLES}

    def score_all():
        for s in scored.values():
            for split in splits:
                s.logits(split)

    t, _ = b.timed(score_all)
    n = sum(len(s) for s in splits.values())
    rows.append(["scoring (logits, 3 models)", t, f"{3 * n} forward passes in eval batches"])
    import sklearn.metrics  # noqa: F401  (imported once here, not inside the first evaluator's time)

    ectx = EvalContext(run=b.ctx, scored=scored, timings={"original": None, "retrain": 1.0, "unlearned": 1.0},
                       data=b.data, forget=b.forget)
    # evaluators that read others' metrics (avg_gap) come after them
    for name in sorted(EVALUATORS.names(), key=lambda n: bool(EVALUATORS.get(n).requires)):
        try:
            ev = EVALUATORS.get(name)()
            total = 0.0
            for role in ("retrain", "original", "unlearned"):  # results accumulate: avg_gap reads earlier ones
                t, res = b.timed(lambda: ev.evaluate(scored[role], ectx))
                ectx.results.setdefault(role, {}).update(res)
                total += t
            rows.append([f"evaluator {name}", total, "3 roles"])
        except Exception as err:
            rows.append([f"evaluator {name}", "failed", f"{type(err).__name__}: {err}"[:80]])
            traceback.print_exc()
    table(f"Pipeline stages: {b.args.dataset}, {b.args.model}, forget {len(b.udata.forget)}",
          ["stage", "seconds", "note"], rows)


def section_bank(b: Bench) -> None:
    import math
    from dataclasses import replace

    import torch
    from torch import nn

    from unlearnbench.engine import RunContext, fit
    from unlearnbench.engine.bank import random_halves, train_bank

    k_models, hidden = b.args.bank_models, b.args.bank_hidden
    d_in = math.prod(b.data.input_shape)
    n_cls = b.data.num_classes

    def factory():
        return nn.Sequential(nn.Flatten(), nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, n_cls))

    recipe = replace(b.recipe, augment="none", max_batches=None, optimizer="sgd")
    split = b.data.train
    masks = random_halves(len(split), k_models, torch.Generator().manual_seed(0))
    seeds = list(range(k_models))

    def one_after_another():
        out = []
        for k in range(k_models):
            torch.manual_seed(seeds[k])
            m = factory().to(b.device)
            fit(m, split.subset(masks[k].nonzero().squeeze(1)), recipe, replace(b.ctx, seed=seeds[k]),
                desc="solo")
            out.append(m.state_dict())
        return out

    train_bank(factory, split, masks[:2], replace(recipe, epochs=1, max_batches=2), b.ctx)  # warm-up
    bank_s, bank = b.timed(lambda: train_bank(factory, split, masks, recipe, b.ctx, seeds=seeds))
    seq_s, seq = b.timed(one_after_another)
    tol = dict(rtol=1e-3, atol=1e-4) if not b.ctx.on_cuda else dict(rtol=5e-2, atol=5e-2)  # bf16 on CUDA
    same = all(torch.allclose(bank[k][n], seq[k][n], **tol) for k in range(k_models) for n in seq[k])
    table(f"Bank: {k_models} MLPs ({d_in}-{hidden}-{n_cls}) on random halves of {len(split)}, "
          f"{recipe.epochs} epoch(s)",
          ["training", "seconds", "speed-up"],
          [["one after another (fit)", seq_s, 1.0], ["bank (vmap)", bank_s, seq_s / bank_s],
           ["bank members equal the solo models", str(same), ""]])


def section_eval(b: Bench) -> None:
    from dataclasses import replace

    import torch
    import torch.nn.functional as F

    from unlearnbench.engine import fit, predict

    recipe = replace(b.recipe, epochs=1, max_batches=None)
    model = b.new_model()
    predict(model, b.data.train.x[:256], b.ctx)  # warm-up
    epoch_s, model = b.timed(lambda: fit(model, b.data.train, recipe, b.ctx, desc="epoch"))

    x = torch.cat([b.data.train.x, b.data.val.x])  # the whole official training set
    y = torch.cat([b.data.train.y, b.data.val.y])

    def features():
        logits = predict(model, x, b.ctx)
        return logits, F.cross_entropy(logits, y, reduction="none")

    feat_s, _ = b.timed(features)
    n = len(y)
    table(f"MIA features (logits + per-example losses) for {n} examples (train + val) vs one "
          f"epoch on {len(b.data.train)}",
          ["work", "seconds", "share of an epoch"],
          [["one training epoch (batch %d)" % recipe.batch_size, epoch_s, 1.0],
           [f"logits + losses, eval batch {b.recipe.eval_batch_size}", feat_s, feat_s / epoch_s]])


def section_prefill(b: Bench) -> None:
    """A seed sweep's originals + oracles: ``prefill`` (banks) vs the run's train stage, one by one."""
    import tempfile

    import torch

    from unlearnbench.cache import ModelCache
    from unlearnbench.prefill import _train_one_by_one, expand, jobs_of, prefill

    n = b.args.prefill_seeds
    with tempfile.TemporaryDirectory() as banked, tempfile.TemporaryDirectory() as solo:
        sweep = [*b.overrides, f"seed=range({n})"]
        bank_s, bank_cpu, report = b.timed_cpu(lambda: prefill([*sweep, f"cache_dir={banked}"]))
        loaded: Dict[str, object] = {}
        jobs = [j for combo in expand([*sweep, f"cache_dir={solo}"]) for j in jobs_of(combo, loaded)]
        seq_s, seq_cpu, _ = b.timed_cpu(lambda: _train_one_by_one(jobs))
        worst = 0.0
        for job in jobs:
            a, _ = ModelCache(banked).load(job.stage, job.key, "cpu")
            s, _ = ModelCache(solo).load(job.stage, job.key, "cpu")
            worst = max(worst, max(float((a[k] - s[k]).abs().max()) for k in s))
    rows = [[f"one after another (train_stage), {len(jobs)} models", seq_s, seq_cpu, 1.0, 1.0],
            [f"unlearnbench-prefill: banks {report.banks}", bank_s, bank_cpu, seq_s / bank_s, seq_cpu / bank_cpu],
            ["largest |bank - solo| parameter difference", f"{worst:.2e}", "", "", ""]]
    table(f"Prefill: {n} originals + {n} oracles, {b.args.dataset} ({len(b.data.train)} train), "
          f"{b.args.model}, {b.recipe.epochs} epoch(s), {torch.get_num_threads()} thread(s)",
          ["training", "wall s", "CPU s", "speed-up (wall)", "speed-up (CPU)"], rows)


def section_memorization(b: Bench) -> None:
    """The heldout bank (K models on paired halves) and learning events; their Spearman rank correlation."""
    import tempfile

    import numpy as np
    from scipy.stats import spearmanr

    from unlearnbench.cache import ModelCache
    from unlearnbench.memorization import heldout_arrays, learning_event_arrays
    from unlearnbench.plan import plan

    k = b.args.memorization_k
    with tempfile.TemporaryDirectory() as cache:
        p = plan(b.cfg)
        ctx = p.start(cache=ModelCache(cache))
        ctx.show_progress = False
        held_s, held_cpu, held = b.timed_cpu(lambda: heldout_arrays(p, b.data, ctx, k))
        events_s, events_cpu, events = b.timed_cpu(lambda: learning_event_arrays(p, b.data, ctx))
        again_s, again_cpu, _ = b.timed_cpu(lambda: heldout_arrays(p, b.data, ctx, k))
    rho = spearmanr(held["score"], events["score"]).statistic
    top = held["score"] >= np.quantile(held["score"], 2 / 3)
    rows = [[f"heldout bank, K={k} on paired halves", held_s, held_cpu,
             f"mean score {held['score'].mean():.3f}, high third {held['score'][top].mean():.3f}"],
            ["learning events (the original's training + a forward pass per epoch)", events_s, events_cpu, ""],
            ["heldout scores again (cache hit)", again_s, again_cpu, ""],
            ["Spearman rank correlation heldout vs learning_events", f"{rho:.3f}", "",
             f"{len(b.data.train)} examples"]]
    table(f"Memorization scores: {b.args.dataset}, {b.args.model}, {b.recipe.epochs} epoch(s)",
          ["work", "wall s", "CPU s", "note"], rows)


def main(argv: Sequence[str] = ()) -> None:
    args = parse(argv)
    t0 = time.perf_counter()
    b = Bench(args)
    import torch

    dev = torch.cuda.get_device_name(b.device) if b.device.type == "cuda" else platform.processor() or "cpu"
    print(f"# unlearnbench bench: device {b.device} ({dev}), torch {torch.__version__}, "
          f"{b.threads} CPU thread(s), dataset {args.dataset} {tuple(b.data.input_shape)} "
          f"({len(b.data.train)} train), model {args.model}, epochs {args.epochs}")
    sections = {"engine": section_engine, "stages": section_stages, "bank": section_bank,
                "eval": section_eval, "prefill": section_prefill, "memorization": section_memorization}
    for name in args.sections.split(","):
        if name not in sections:
            raise SystemExit(f"--sections: unknown '{name}'; choose from {sorted(sections)}")
        sections[name](b)
    print(f"\ntotal {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
