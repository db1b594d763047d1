"""``unlearnbench-audit PATH...``: per-example audits of unlearned models against oracles.

Reads finished run dirs only (metrics.csv, scores.npz, .hydra/config.yaml). Each method's
runs over K seeds form a population; its unlearned models (A) are audited against its
oracles (B) per forget example with U-LiRA, the NeurIPS 2023 ε-score and KLOM, with
bootstrap CIs over examples. Every row compares the models of one half of the seeds
with those of the other half (both ways), so every row, the calibration rows included,
is the same test at the same size:

- ``oracle vs oracle`` (the null): oracles against oracles; must read indistinguishable;
- ``original vs oracle`` (the alternative): must read distinguishable.

A method row is *separated* from the oracle by a statistic when its CI and the null
row's CI do not overlap. Definitions, sources and how to read the plot: docs/audit.md.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from unlearnbench.reports import audit_stats as st
from unlearnbench.reports.audit_load import (Population, Run, check_testbed, fail, find_runs,
                                             populations)

SPLITS = ("forget", "retain", "test")
POPULATION_MIAS = ("mia_loss_auc", "mia_svc_efficacy")
NULL, ALTERNATIVE = "oracle vs oracle (null)", "original vs oracle"
# The statistics whose CI decides "separated from the oracle".
# ε and KLOM through their permutation-calibrated forms: raw, both sit far from their ideal
# at small K even for two oracle populations (audit_stats.permutation_null).
VERDICT_STATS = {"ulira_auc": "U-LiRA", "eps_forget_score_calibrated": "ε", "klom_forget_excess": "KLOM"}
IDEALS = {"ulira_auc": 0.5, "eps_forget_score_calibrated": 1.0, "klom_forget_excess": 0.0}


@dataclass
class Options:
    folds: Optional[int] = None  # None: one model per side per fold (leave-one-pair-out)
    pooled: bool = True          # one U-LiRA variance per population, pooled over examples
    rounds: int = 1000           # bootstrap resamples of the examples
    level: float = 0.95
    permutations: int = 24       # random re-partitions of the pooled models for the ε/KLOM null (in all)
    partitions: int = 4          # splits of the seeds into halves each row averages over (both ways)


@dataclass
class Row:
    """One audited comparison: per-example arrays and the summary statistics with CIs."""

    label: str
    kind: str  # calibration | method
    k: int
    per_example: Dict[str, np.ndarray] = field(default_factory=dict)
    stats: Dict[str, Tuple[float, float, float]] = field(default_factory=dict)  # value, lo, hi
    per_example_verdict: List[str] = field(default_factory=list)  # statistics separating it from the null
    population_verdict: List[str] = field(default_factory=list)   # population MIAs with Δ's CI off 0


def halves(k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Seed positions of the two halves (interleaved; an odd last seed is left out)."""
    m = k // 2
    return np.arange(0, 2 * m, 2), np.arange(1, 2 * m, 2)


def directions(k: int, partitions: int = 1) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The comparisons of a row, (A's half, B's half): each of ``partitions`` splits of the
    seeds into two halves (the first interleaved, the others random, seeded) used both ways.

    Halves are disjoint in seeds, so an unlearned model never meets the oracle that shares
    its seed. More partitions average the statistic over more draws of which models meet."""
    m = k // 2
    parts = [halves(k)]
    rng = np.random.default_rng(0)
    for _ in range(partitions - 1):
        order = rng.permutation(2 * m)
        parts.append((np.sort(order[:m]), np.sort(order[m:])))
    return [pair for h1, h2 in parts for pair in ((h1, h2), (h2, h1))]


def _ulira(a: np.ndarray, b: np.ndarray, opts: Options):
    """Per-fold, per-example AUC [folds, E] averaged over both directions, and the pooled
    scores for TPR."""
    m = len(a) // 2
    folds = opts.folds or m
    if not 2 <= folds <= m:
        fail(f"--folds must be in [2, {m}] (models per half of {len(a)} seeds), got {folds}")
    aucs, pos, neg = [], [], []
    for ha, hb in directions(len(a), opts.partitions):
        sa, sb = st.ulira_scores(a[ha], b[hb], folds, opts.pooled)
        aucs.append(st.ulira_auc(sa, sb, folds))
        pos.append(sa)
        neg.append(sb)
    # fold f pairs the same models both ways: one unit of the bootstrap, not two
    return np.mean(aucs, 0), np.concatenate(pos), np.concatenate(neg)


def _both_ways(fn, a: np.ndarray, b: np.ndarray, opts: Options) -> np.ndarray:
    """``fn`` per example, averaged over the row's comparisons."""
    return np.mean([fn(a[ha], b[hb]) for ha, hb in directions(len(a), opts.partitions)], 0)


def _null_both_ways(fn, a: np.ndarray, b: np.ndarray, opts: Options) -> np.ndarray:
    """``fn``'s permutation null per example over the same comparisons (``opts.permutations``
    re-partitions in all, spread over them)."""
    pairs = directions(len(a), opts.partitions)
    rounds = max(1, math.ceil(opts.permutations / len(pairs)))
    return np.mean([st.permutation_null(fn, a[ha], b[hb], rounds, seed=i)
                    for i, (ha, hb) in enumerate(pairs)], 0)


def audit_row(label: str, kind: str, a: Dict[str, np.ndarray], b: Dict[str, np.ndarray],
              utility: float, opts: Options) -> Row:
    """Population A (margins by split, [K, E]) audited against population B."""
    k = len(a["forget"])
    m = k // 2
    fold_auc, pos, neg = _ulira(a["forget"], b["forget"], opts)
    eps = [st.per_example_epsilon(a["forget"][ha], b["forget"][hb]) for ha, hb in directions(k, opts.partitions)]
    points = np.mean([st.epsilon_points(e, m) for e in eps], 0)  # each comparison scored, then averaged
    points_of = lambda x, y: st.epsilon_points(st.per_example_epsilon(x, y), m)
    row = Row(label, kind, k, {"ulira_auc": fold_auc.mean(0), "ulira_fold_auc": fold_auc,
                               "epsilon": np.mean(eps, 0), "eps_points": points,
                               "eps_points_null": _null_both_ways(points_of, a["forget"], b["forget"], opts)})
    for split in SPLITS:
        row.per_example[f"klom_{split}"] = _both_ways(st.klom, a[split], b[split], opts)
        row.per_example[f"klom_{split}_excess"] = (row.per_example[f"klom_{split}"]
                                                    - _null_both_ways(st.klom, a[split], b[split], opts))
    _summarise(row, pos, neg, utility, opts)
    return row


def _summarise(row: Row, pos: np.ndarray, neg: np.ndarray, utility: float, opts: Options) -> None:
    """Means, p95s and TPRs with percentile-bootstrap CIs over forget (or split) examples;
    the U-LiRA AUC's CI resamples folds of models too."""
    def stat(name: str, values: np.ndarray, reduce) -> None:
        idx = st.bootstrap_indices(len(values), opts.rounds)
        row.stats[name] = (float(reduce(values)), *st.percentile_ci(reduce(values[idx].T), opts.level))

    mean = lambda v: np.mean(v, 0)
    p95 = lambda v: np.percentile(v, 95, axis=0)
    fold_auc = row.per_example["ulira_fold_auc"]  # CI over folds of models and examples
    row.stats["ulira_auc"] = (float(fold_auc.mean()),
                              *st.percentile_ci(st.crossed_bootstrap_means(fold_auc, opts.rounds), opts.level))
    idx = st.bootstrap_indices(pos.shape[1], opts.rounds)
    for fpr in (0.01, 0.05):
        value = float(st.tpr_at_fpr(pos.ravel(), neg.ravel(), fpr))
        boot = st.tpr_at_fpr(_flat_resample(pos, idx), _flat_resample(neg, idx), fpr)
        row.stats[f"ulira_tpr@{fpr:.0%}"] = (value, *st.percentile_ci(boot, opts.level))
    stat("eps_forget_score", row.per_example["eps_points"], mean)
    value, lo, hi = row.stats["eps_forget_score"]
    row.stats["eps_score"] = (value * utility, lo * utility, hi * utility)
    # ratio of means, examples resampled jointly in numerator and denominator
    both = np.stack([row.per_example["eps_points"], row.per_example["eps_points_null"]], 1)
    ratio = lambda v: np.mean(v[..., 0], 0) / np.mean(v[..., 1], 0)
    idx = st.bootstrap_indices(len(both), opts.rounds)
    row.stats["eps_forget_score_calibrated"] = (float(ratio(both)),
                                                *st.percentile_ci(ratio(both[idx].transpose(1, 0, 2)), opts.level))
    for split in SPLITS:
        stat(f"klom_{split}_mean", row.per_example[f"klom_{split}"], mean)
        stat(f"klom_{split}_p95", row.per_example[f"klom_{split}"], p95)
        stat(f"klom_{split}_excess", row.per_example[f"klom_{split}_excess"], mean)


def _flat_resample(scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[models, E] scores at resampled examples idx [R, E] -> [R, models·E]."""
    return scores[:, idx].transpose(1, 0, 2).reshape(len(idx), -1)


def population_mia(runs: Sequence[Run], role: str, level: float) -> Dict[str, Tuple[float, float, float]]:
    """Paired Δ = role − oracle of each population MIA over seeds, with a t-interval."""
    from scipy import stats as sps

    out = {}
    for name in POPULATION_MIAS:
        d = np.array([r.metric(role, name) - r.metric("retrain", name) for r in runs])
        d = d[~np.isnan(d)]
        if len(d) < 2:
            continue
        half = sps.t.ppf((1 + level) / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
        out[f"{name}_delta"] = (float(d.mean()), float(d.mean() - half), float(d.mean() + half))
    return out


def _utility(runs: Sequence[Run], role_a: str, partitions: int) -> float:
    """The challenge's utility factor (RA_A / RA_B)(TA_A / TA_B), accuracies averaged over
    the models each half-comparison uses."""
    out = []
    for ha, hb in directions(len(runs), partitions):
        ratio = 1.0
        for split in ("retain", "test"):
            acc_a = np.mean([runs[i].metric(role_a, f"{split}_acc") for i in ha])
            acc_b = np.mean([runs[i].metric("retrain", f"{split}_acc") for i in hb])
            ratio *= acc_a / acc_b
        out.append(ratio)
    return float(np.mean(out))


def _margins(pop: Population, role: str) -> Dict[str, np.ndarray]:
    return {split: pop.stack("margin", role, split) for split in SPLITS}


def audit(runs: Sequence[Run], min_seeds: int = 8, opts: Optional[Options] = None) -> List[Row]:
    """Calibration rows first (from one run per seed), then one row per method population."""
    opts = opts or Options()
    check_testbed(runs)
    pops = populations(runs, min_seeds)
    by_seed: Dict[int, Run] = {}
    for r in runs:
        by_seed.setdefault(r.seed, r)
    reference = Population("reference", [by_seed[s] for s in sorted(by_seed)])
    oracle = _margins(reference, "retrain")
    rows = [audit_row(NULL, "calibration", oracle, oracle, _utility(reference.runs, "retrain", opts.partitions), opts),
            audit_row(ALTERNATIVE, "calibration", _margins(reference, "original"), oracle,
                      _utility(reference.runs, "original", opts.partitions), opts)]
    rows[1].stats.update(population_mia(reference.runs, "original", opts.level))
    for pop in pops:
        row = audit_row(pop.label, "method", _margins(pop, "unlearned"), _margins(pop, "retrain"),
                        _utility(pop.runs, "unlearned", opts.partitions), opts)
        row.stats.update(population_mia(pop.runs, "unlearned", opts.level))
        rows.append(row)
    _verdicts(rows)
    return rows


def _overlaps(a: Tuple[float, float, float], b: Tuple[float, float, float]) -> bool:
    return a[1] <= b[2] and b[1] <= a[2]


def _verdicts(rows: List[Row]) -> None:
    """Per row: which per-example statistics separate it from the null row (CIs disjoint),
    and whether a population MIA's paired Δ CI excludes 0."""
    null = rows[0]
    for row in rows:
        row.per_example_verdict = [VERDICT_STATS[s] for s in VERDICT_STATS
                                   if not _overlaps(row.stats[s], null.stats[s])]
        row.population_verdict = [m for m in POPULATION_MIAS if f"{m}_delta" in row.stats
                                  and not row.stats[f"{m}_delta"][1] <= 0 <= row.stats[f"{m}_delta"][2]]


def calibration_notes(rows: List[Row]) -> List[str]:
    """Whether the calibration rows hold: the null at each verdict statistic's ideal value
    within its CI (reported, not hidden, when it is not), the original separated; and the
    raw ε and KLOM floors at this K, which the calibrated forms remove."""
    null, alt = rows[0], rows[1]
    notes = []
    for name, ideal in IDEALS.items():
        v, lo, hi = null.stats[name]
        held = lo <= ideal <= hi
        notes.append(f"null {name}: {v:.3f} [{lo:.3f}, {hi:.3f}], ideal {ideal:g}: "
                     + ("at its ideal within the CI" if held else "NOT at its ideal"))
    raw = {name: null.stats[name][0] for name in ("eps_forget_score", "klom_forget_mean")}
    notes.append(f"raw null at K = {null.k} (the floors the calibrated forms divide/subtract out): "
                 f"eps_forget_score {raw['eps_forget_score']:.3f} (ideal 1), "
                 f"klom_forget_mean {raw['klom_forget_mean']:.3f} nats (ideal 0)")
    notes.append(f"original vs oracle separated by: {', '.join(alt.per_example_verdict) or 'NOTHING (the testbed has no signal)'}")
    return notes


# ----------------------------------------------------------------------------- output

COLUMNS = [("ulira_auc", "U-LiRA AUC"), ("ulira_tpr@1%", "TPR@1%FPR"), ("ulira_tpr@5%", "TPR@5%FPR"),
           ("eps_forget_score", "ε forget score"), ("eps_forget_score_calibrated", "ε forget score ÷ null"),
           ("eps_score", "ε score (×utility)"),
           ("klom_forget_mean", "KLOM forget mean"), ("klom_forget_excess", "KLOM forget − null"),
           ("klom_forget_p95", "KLOM forget p95"),
           ("klom_retain_mean", "KLOM retain mean"), ("klom_retain_excess", "KLOM retain − null"),
           ("klom_test_mean", "KLOM test mean"), ("klom_test_excess", "KLOM test − null"),
           ("mia_loss_auc_delta", "Δ mia_loss_auc"), ("mia_svc_efficacy_delta", "Δ mia_svc_efficacy")]


def long_frame(rows: List[Row]) -> pd.DataFrame:
    """One line per (row, statistic): value and CI bounds (the --csv output)."""
    return pd.DataFrame([{"row": r.label, "kind": r.kind, "K": r.k, "statistic": name,
                          "value": v, "ci_low": lo, "ci_high": hi}
                         for r in rows for name, (v, lo, hi) in r.stats.items()])


def wide_table(rows: List[Row], digits: int = 3) -> pd.DataFrame:
    """The display table: ``value [lo, hi]`` per statistic and the two verdicts."""
    out = []
    for r in rows:
        cells = {"row": r.label, "K": r.k}
        for name, title in COLUMNS:
            if name in r.stats:
                v, lo, hi = r.stats[name]
                cells[title] = f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
            else:
                cells[title] = "–"
        cells["separated by (per-example)"] = ", ".join(r.per_example_verdict) or "none"
        cells["separated by (population MIA)"] = ("–" if r.label == NULL else
                                                   ", ".join(r.population_verdict) or "none")
        out.append(cells)
    return pd.DataFrame(out)


def to_markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = [("ε", r"$\varepsilon$"), ("Δ", r"$\Delta$"), ("×", r"$\times$"), ("–", "--")]


def latex_escape(text: str) -> str:
    out = "".join(_LATEX.get(ch, ch) for ch in str(text))
    for a, b in _LATEX_SYMBOLS:
        out = out.replace(a, b)
    return out


def to_latex(frame: pd.DataFrame) -> str:
    lines = [r"\begin{tabular}{l" + "c" * (len(frame.columns) - 1) + "}", r"\toprule",
             " & ".join(latex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])


def plot(rows: List[Row], path: Path) -> None:
    """Empirical CDFs over forget examples of per-example U-LiRA AUC, ε and KLOM, one line
    per row (the null black dashed, the original red): a method whose curve lies on the
    null's is indistinguishable per example, not just on average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("ulira_auc", "per-example U-LiRA AUC (0.5 = chance)"),
              ("epsilon", "per-example ε (NeurIPS'23; lower = closer)"),
              ("klom_forget_excess", "per-example KLOM on forget − permutation null (nats)")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (key, title) in zip(axes, panels):
        for r in rows:
            x = np.sort(r.per_example[key])
            style = {NULL: dict(color="black", ls="--", lw=2, zorder=5), ALTERNATIVE: dict(color="red", lw=2)}
            ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=r.label, **style.get(r.label, {}))
        ax.set_title(title)
        if key == "epsilon":  # ε runs up to its cap of 50 (perfect separation)
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_ylabel("share of forget examples ≤ x")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unlearnbench-audit", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", help="run dirs or folders holding them (searched recursively)")
    p.add_argument("--min-seeds", type=int, default=8, help="fewest seeds a population may have (K)")
    p.add_argument("--folds", type=int, default=None,
                   help="U-LiRA cross-fitting folds per half (default: K/2, one model per side per fold)")
    p.add_argument("--per-example-variance", action="store_true",
                   help="U-LiRA: a variance per example instead of one pooled over examples")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the examples")
    p.add_argument("--level", type=float, default=0.95, help="CI coverage")
    p.add_argument("--permutations", type=int, default=24,
                   help="random re-partitions of the pooled models for the ε and KLOM nulls (in all)")
    p.add_argument("--partitions", type=int, default=4,
                   help="splits of the seeds into halves that every row averages over (each used both ways)")
    p.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown")
    p.add_argument("--digits", type=int, default=3)
    p.add_argument("--out", type=Path, help="write the table here instead of stdout")
    p.add_argument("--csv", type=Path, help="also write every statistic with its CI as long CSV")
    p.add_argument("--plot", type=Path, help="also write the per-example distributions (PNG/PDF)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parser().parse_args(argv)
    if args.min_seeds < 4:
        fail("--min-seeds must be at least 4 (two models per half)")
    if args.permutations < 1 or args.partitions < 1:
        fail("--permutations and --partitions must be at least 1")
    opts = Options(args.folds, not args.per_example_variance, args.bootstrap, args.level,
                   args.permutations, args.partitions)
    rows = audit(find_runs(args.paths), args.min_seeds, opts)
    frame = wide_table(rows, args.digits)
    text = {"markdown": to_markdown, "latex": to_latex,
            "csv": lambda f: f.to_csv(index=False).rstrip()}[args.format](frame)
    notes = "\n".join(f"- {n}" for n in calibration_notes(rows))
    text += "\n\n" + (notes if args.format == "markdown" else "")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text.rstrip() + "\n")
    print(text.rstrip() if not args.out else f"wrote {args.out}\n{notes}")
    if args.csv:
        long_frame(rows).to_csv(args.csv, index=False)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
