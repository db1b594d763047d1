"""The Evaluator contract and the memoised per-split model outputs every evaluator shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import RunContext, predict
from unlearnbench.errors import ConfigError
from unlearnbench.registry import EVALUATORS
from unlearnbench.results import ROLES


@dataclass(frozen=True)
class Metric:
    """A metric's convention: ``higher_is_better`` True/False, or None = closer to the oracle."""

    higher_is_better: Optional[bool]
    definition: str


class Scored:
    """A model with its logits, per-example losses and correctness memoised per split.

    Every evaluator reads outputs through this, so each split is scored once per model.
    """

    def __init__(self, role: str, model: nn.Module, splits: Dict[str, Split], ctx: RunContext):
        self.role, self.model, self.splits, self.ctx = role, model, splits, ctx
        self._logits: Dict[str, Tensor] = {}

    @classmethod
    def from_logits(cls, role: str, logits: Mapping[str, Any], labels: Mapping[str, Any]) -> "Scored":
        """A Scored whose outputs are given instead of computed by a model.

        Lets metric definitions be pinned on hand-written logits (tests) and lets outputs
        computed elsewhere be evaluated; every per-split quantity derives from the logits.
        """
        splits = {}
        for name, y in labels.items():
            y = torch.as_tensor(y, dtype=torch.long)
            splits[name] = Split(torch.empty(len(y), 0), y)
        scored = cls(role, None, splits, None)
        for name, z in logits.items():
            z = torch.as_tensor(z, dtype=torch.float32)
            if z.ndim != 2 or z.shape[0] != len(splits[name]):
                raise ValueError(f"logits of split '{name}' must be [{len(splits[name])}, classes], "
                                 f"got {tuple(z.shape)}")
            scored._logits[name] = z
        return scored

    def logits(self, split: str) -> Tensor:
        if split not in self._logits:
            self._logits[split] = predict(self.model, self.splits[split].x, self.ctx)
        return self._logits[split]

    def losses(self, split: str) -> Tensor:
        return F.cross_entropy(self.logits(split), self.splits[split].y, reduction="none")

    def correct(self, split: str) -> Tensor:
        return self.logits(split).argmax(1).eq(self.splits[split].y)

    def accuracy(self, split: str) -> float:
        c = self.correct(split)
        return float(c.float().mean()) if c.numel() else float("nan")

    def true_confidence(self, split: str) -> Tensor:
        """Softmax probability of the true label (SalUn's MIA feature)."""
        probs = self.logits(split).softmax(1)
        return probs.gather(1, self.splits[split].y.view(-1, 1)).squeeze(1)

    def entropy(self, split: str) -> Tensor:
        logp = self.logits(split).log_softmax(1)
        return -(logp.exp() * logp).sum(1)


@dataclass
class EvalContext:
    """What evaluators see: every role's scored model, the data and forget set, and the run.

    Attributes:
        run: device, seed streams, recipe, cache.
        scored: role -> Scored (``original``, ``retrain`` = the oracle, ``unlearned``).
        timings: role -> seconds that produced the model (None for the original).
        data: the clean DataBundle (before any evaluator's ``prepare_data``).
        forget: the run's ForgetSet (indices into ``data.train``).
        method_stats: what the method reported (``Unlearned.stats``).
        results: role -> metrics computed so far (the oracle's come first).
    """

    run: RunContext
    scored: Dict[str, Scored]
    timings: Dict[str, Optional[float]] = field(default_factory=dict)
    data: Any = None
    forget: Any = None
    method_stats: Dict[str, float] = field(default_factory=dict)
    results: Dict[str, Dict[str, float]] = field(default_factory=dict)

    @property
    def oracle(self) -> Scored:
        return self.scored["retrain"]

    @property
    def original(self) -> Scored:
        return self.scored["original"]


class Evaluator:
    """Base class: declare ``metrics`` and implement ``evaluate`` for one role's model."""

    registry_name = "base"
    metrics: Dict[str, Metric] = {}
    # Evaluators whose metrics this one reads from ``ctx.results``; they must come earlier
    # in ``eval.evaluators`` (checked when the evaluators are built, before any training).
    requires: Tuple[str, ...] = ()
    # True when this evaluator's metrics on the original and the oracle depend only on those
    # two models, the data, the forget set, the seed and its parameters, and evaluating them
    # leaves no state or global random draws behind: they are then computed once and reused
    # by every run that shares them (unlearnbench/references.py).
    reusable_reference: bool = False
    spec: Dict[str, Any] = {}  # name and parameters it was built with (set by build_evaluators)

    def evaluate(self, model: Scored, ctx: EvalContext) -> Dict[str, float]:
        raise NotImplementedError

    def prepare_data(self, data: Any, forget: Any, ctx: RunContext) -> Any:
        """Optional hook, called before the original is trained: may return a DataBundle whose
        forget rows of the training split are replaced (SPD's inject mode). Default: unchanged."""
        return data


def build_evaluators(names: Sequence[Any], params: Optional[Dict[str, Dict[str, Any]]] = None
                     ) -> List[Evaluator]:
    """Evaluators by name, with optional per-evaluator keyword arguments (``eval.params``)."""
    params = dict(params or {})
    out: List[Evaluator] = []
    for name in names:
        spec = {"name": name, **(params.pop(name, {}) or {})}
        ev = EVALUATORS.build(dict(spec), f"eval.params.{name}")
        ev.spec = spec
        missing = [r for r in ev.requires if r not in [e.registry_name for e in out]]
        if missing:
            raise ConfigError("eval.evaluators", f"evaluator '{name}' reads the metrics of "
                              f"{missing}; list them before '{name}'")
        out.append(ev)
    if params:
        raise ConfigError(f"eval.params.{sorted(params)[0]}", "parameters for an evaluator not in eval.evaluators")
    return out


def objective_evaluators(objective: str, listed: Sequence[Any]) -> List[str]:
    """The evaluators to append to ``listed`` so that metric ``objective`` is computed.

    Empty when a listed evaluator computes it; else its evaluator, after any evaluator it
    reads that is missing too. Raises ConfigError naming ``objective`` for unknown metrics.
    """
    import difflib

    owners = {m: name for name in EVALUATORS.names() for m in EVALUATORS.get(name).metrics}
    if objective not in owners:
        close = difflib.get_close_matches(objective, owners, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError("objective", f"no evaluator computes '{objective}'.{hint} "
                                       f"Metrics: {', '.join(sorted(owners))}")
    missing: List[str] = []

    def add(name: str) -> None:
        if name in listed or name in missing:
            return
        for required in EVALUATORS.get(name).requires:
            add(required)
        missing.append(name)

    add(owners[objective])
    return missing


def metric_info() -> Dict[str, Metric]:
    """Every registered metric's convention, for tables (↑/↓) and docs."""
    info: Dict[str, Metric] = {}
    for name in EVALUATORS.names():
        info.update(EVALUATORS.get(name).metrics)
    return info
