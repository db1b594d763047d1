"""The one training/evaluation engine used by training, retraining and every method."""

from unlearnbench.engine.context import RunContext
from unlearnbench.engine.loop import (
    Recipe,
    batches,
    fit,
    make_optimizer,
    make_scheduler,
    predict,
    train_loop,
)

__all__ = ["RunContext", "Recipe", "batches", "fit", "make_optimizer", "make_scheduler",
           "predict", "train_loop"]
