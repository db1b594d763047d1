"""The one training/evaluation engine used by training, retraining and every method."""

from unlearnbench.engine.bank import random_halves, train_bank
from unlearnbench.engine.context import RunContext, configure_threads
from unlearnbench.engine.loop import (
    Recipe,
    batches,
    fit,
    make_optimizer,
    make_scheduler,
    predict,
    train_loop,
)

__all__ = ["RunContext", "configure_threads", "Recipe", "batches", "fit", "make_optimizer", "make_scheduler",
           "predict", "train_loop", "random_halves", "train_bank"]
