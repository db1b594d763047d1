"""The Method contract: one hook, ``unlearn(model, data, ctx) -> model | Unlearned``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine.context import RunContext
from unlearnbench.registry import METHODS


@dataclass
class UnlearnData:
    """What a method may see: forget / retain / validation splits (never the test split).

    ``new_model`` builds a freshly initialised model of the run's architecture (DEL's
    reset draws θ_init from it); None outside the pipeline.
    """

    forget: Split
    retain: Split
    val: Split
    forget_idx: Tensor
    retain_idx: Tensor
    num_classes: int
    new_model: Optional[Callable[[], nn.Module]] = None

    @property
    def forget_share(self) -> float:
        """s = |D_f| / |D|, the quantity ∇τ derives its schedule from."""
        return len(self.forget) / (len(self.forget) + len(self.retain))


@dataclass
class Unlearned:
    """A method's output: the unlearned model and what the method reports about its run.

    Attributes:
        model: θu.
        stats: numbers (counts, fractions, epochs run); each lands in metrics.csv as
            metric ``method.<name>`` of role ``unlearned``.
        details: anything else worth keeping (per-epoch schedules, stopping checks); written
            to ``method_details.json`` in the run dir. Must be JSON-serialisable.
        train_log: per-epoch rows of the method's training loop (``TrainLog.rows``), written
            to ``train_log.csv`` as role ``unlearned``; empty for methods without epochs.
    """

    model: nn.Module
    stats: Dict[str, float] = field(default_factory=dict)
    details: Dict[str, Any] = field(default_factory=dict)
    train_log: List[Dict[str, Any]] = field(default_factory=list)


def as_unlearned(out: Union[nn.Module, Unlearned]) -> Unlearned:
    """Methods may return just the model (plugins stay simple)."""
    if isinstance(out, Unlearned):
        return out
    if isinstance(out, nn.Module):
        return Unlearned(out)
    raise TypeError(f"a method's unlearn must return an nn.Module or Unlearned, got {type(out).__name__}")


class Method:
    """Base class. Subclasses take their YAML keys as constructor arguments.

    Attributes:
        version: bumped whenever results change; written into every metrics.csv row.
        uses_oracle: the method starts from the retrained oracle instead of the original
            (only ``retrain``); its unlearning time is then the oracle's training time.
    """

    registry_name = "base"
    version = "1"
    uses_oracle = False

    def unlearn(self, model: nn.Module, data: UnlearnData, ctx: RunContext) -> Union[nn.Module, Unlearned]:
        raise NotImplementedError


def build_method(cfg: Dict[str, Any]) -> Method:
    """Builds the configured method; a key it does not take is a config error."""
    return METHODS.build(cfg, "method")
