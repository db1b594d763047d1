"""The Evaluator contract and the memoised per-split model outputs every evaluator shares."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import RunContext, predict
from unlearnbench.errors import ConfigError

ROLES = ("original", "retrain", "unlearned")


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
    """The scored models of every role, so evaluators can compare against the oracle."""

    run: RunContext
    scored: Dict[str, Scored]
    timings: Dict[str, float] = field(default_factory=dict)
    results: Dict[str, Dict[str, float]] = field(default_factory=dict)  # role -> metrics so far

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

    def evaluate(self, model: Scored, ctx: EvalContext) -> Dict[str, float]:
        raise NotImplementedError


def build_evaluators(names: Sequence[Any], params: Optional[Dict[str, Dict[str, Any]]] = None
                     ) -> List[Evaluator]:
    """Evaluators by name, with optional per-evaluator keyword arguments (``eval.params``)."""
    from unlearnbench.registry import EVALUATORS

    params = dict(params or {})
    out = []
    for name in names:
        cls = EVALUATORS.get(name)
        kwargs = dict(params.pop(name, {}) or {})
        allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise ConfigError(f"eval.params.{name}.{sorted(unknown)[0]}",
                              f"evaluator '{name}' takes {sorted(allowed)}")
        missing = [r for r in cls.requires if r not in [e.registry_name for e in out]]
        if missing:
            raise ConfigError("eval.evaluators", f"evaluator '{name}' reads the metrics of "
                              f"{missing}; list them before '{name}'")
        out.append(cls(**kwargs))
    if params:
        raise ConfigError(f"eval.params.{sorted(params)[0]}", "parameters for an evaluator not in eval.evaluators")
    return out


def metric_info() -> Dict[str, Metric]:
    """Every registered metric's convention, for tables (↑/↓) and docs."""
    from unlearnbench.registry import EVALUATORS

    info: Dict[str, Metric] = {}
    for name in EVALUATORS.names():
        info.update(EVALUATORS.get(name).metrics)
    return info
