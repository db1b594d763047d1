"""Hyperparameter tuning against the oracle: search spaces, the Optuna driver, tuned files.

Importing this package needs no Optuna; only ``unlearnbench-tune`` (``tuning.cli``) does.
"""
