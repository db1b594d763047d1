"""Per-epoch training curves: the rows of a run's ``train_log.csv``.

One row per (model, epoch): optimizer steps so far, the epoch's mean training loss,
accuracy on a fixed validation slice and wall seconds since that model's training began.
Reports read the file (``unlearnbench-compare --curves``).
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional

from torch import Tensor, nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine.context import RunContext
from unlearnbench.engine.loop import predict

COLUMNS = ["role", "epoch", "step", "loss", "val_acc", "seconds"]
VAL_ROWS = 512  # the fixed slice: the first rows of the validation split, the same for every model


class TrainLog:
    """Collects one model's per-epoch rows; ``train_loop`` calls ``record`` after each epoch.

    The validation pass runs under no_grad in eval mode and restores the model's mode, and
    draws no random numbers, so logging leaves the training itself unchanged.
    """

    def __init__(self, val: Optional[Split], ctx: RunContext):
        self.val = None if val is None or len(val) == 0 else Split(val.x[:VAL_ROWS], val.y[:VAL_ROWS])
        self.ctx = ctx
        self.rows: List[Dict] = []
        self.steps = 0
        self.start = time.perf_counter()

    def record(self, model: nn.Module, epoch: int, steps: int, loss_sum: Tensor) -> None:
        """Appends 0-based ``epoch``'s row: ``steps`` taken in it, their summed loss."""
        self.steps += steps
        loss = (loss_sum / steps).item() if steps else float("nan")
        self.rows.append({"epoch": epoch + 1, "step": self.steps, "loss": round(loss, 6),
                          "val_acc": self.val_accuracy(model),
                          "seconds": round(time.perf_counter() - self.start, 4)})

    def val_accuracy(self, model: nn.Module) -> Optional[float]:
        if self.val is None:
            return None
        logits = predict(model, self.val.x, self.ctx)
        return round((logits.argmax(1) == self.val.y).float().mean().item(), 6)
